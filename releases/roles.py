"""The three roles as Django groups: who may read, decide and operate (README: Roles).

Migrations call `roles_sync` so that a fresh install and an upgraded one hold the same groups
with exactly these permissions. A user may be in several groups; the two-person rule
(`releases.services.approvals`) still keeps anyone from approving what they asked for.
"""

from __future__ import annotations

from django.contrib.auth.management import create_permissions

VIEW = [
    "view_build",
    "view_buildfile",
    "view_releaserequest",
    "view_approval",
    "view_webhookdelivery",
    "view_auditevent",
    "view_notification",
    "view_cdnpurge",
    "view_rollouthalt",
    "adoption.view_adoptioncount",  # the Adoption page and /api/adoption/
]
DECIDE = ["approve_release"]
OPERATE = [
    "retry_build",
    "rollback_build",
    "reconcile_production",
    "withdraw_release",
    "halt_rollout",
]

AUDITORS = "auditors"
APPROVERS = "approvers"
RELEASE_MANAGERS = "release managers"

ROLES: dict[str, list[str]] = {
    AUDITORS: VIEW,
    APPROVERS: VIEW + DECIDE,
    # Release managers may approve too, but never a request they opened or retried.
    RELEASE_MANAGERS: VIEW + DECIDE + OPERATE,
}
# Earlier installs called the read-only group "reviewers"; it becomes "auditors".
RENAMED = {"reviewers": AUDITORS}


def roles_sync(apps) -> None:
    """Create or update the groups so that each has exactly its role's permissions."""
    # Permissions are normally created after all migrations; the groups need them now.
    # `create_permissions` skips an app whose `models_module` is unset, as it is in a
    # migration's app registry. Each app gets its own value back: the project's registry
    # (the demo passes it) needs it, or `flush` and `migrate` stop re-creating permissions.
    for app_config in apps.get_app_configs():
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        try:
            create_permissions(app_config, verbosity=0)
        finally:
            app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for old, new in RENAMED.items():
        if not Group.objects.filter(name=new).exists():
            Group.objects.filter(name=old).update(name=new)
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = [_qualified(codename) for codename in codenames]
        group.permissions.set(
            [
                permission
                for app_label, codename in wanted
                for permission in Permission.objects.filter(
                    content_type__app_label=app_label, codename=codename
                )
            ]
        )


def _qualified(codename: str) -> tuple[str, str]:
    """`app.codename` names another app's permission; a bare codename is the releases app's."""
    app_label, _, name = codename.rpartition(".")
    return (app_label or "releases", name)
