"""Signal receivers that put sensitive account actions in the audit trail (services/access.py).

Connected with the real models as senders, so the historical models of a migration's data
step (which creates the groups) never trigger them. One receiver is not about the trail: a new
API token's clear key is replaced by its digest before it is saved (services/api_tokens.py).
"""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from rest_framework.authtoken.models import Token

from cdn.clientip import client_ip
from releases.models import AuditEvent
from releases.services.access import (
    access_record,
    describe_changes,
    user_changes,
    user_snapshot,
)
from releases.services.api_tokens import token_hash_on_save


def _ip(request) -> str | None:
    if request is None:
        return None
    return client_ip(request)


def logged_in(sender, request, user, **kwargs):
    name = user.get_username()
    access_record(kind="auth.login", message=f"{name} logged in", actor=name,
                  data={"ip": _ip(request)})  # fmt: skip


def logged_out(sender, request, user, **kwargs):
    if user is None:
        return
    name = user.get_username()
    access_record(kind="auth.logout", message=f"{name} logged out", actor=name,
                  data={"ip": _ip(request)})  # fmt: skip


def login_failed(sender, credentials, request=None, **kwargs):
    # Never the password: Django masks it in `credentials`, and only the name is kept.
    name = str(credentials.get("username", ""))[:150]
    locked = bool(getattr(request, "axes_locked_out", False))
    message = f"failed login as {name!r}" + (" (locked out)" if locked else "")
    access_record(kind="auth.login_failed", message=message, actor=name or "anonymous",
                  data={"ip": _ip(request), "locked_out": locked})  # fmt: skip


def locked_out(sender, request, username, ip_address, **kwargs):
    # Axes signals again for each attempt refused during a lockout: those are failed logins
    # (with locked_out: true); only the attempt that caused the lockout is a lockout.
    name = str(username or "anonymous")
    last = (
        AuditEvent.objects.filter(kind__in=("auth.login_failed", "auth.locked_out"), actor=name)
        .order_by("-sequence")
        .first()
    )
    if last is not None and last.data.get("ip") == ip_address:
        if last.kind == "auth.locked_out" or last.data.get("locked_out"):
            return
    access_record(
        kind="auth.locked_out",
        message=f"{name!r} locked out from {ip_address} after repeated failed logins",
        actor=name,
        data={"ip": ip_address, "failures": getattr(request, "axes_failures_since_start", None)},
    )


def _loaded(instance, kwargs) -> bool:
    """A raw save loads a fixture or a serialized copy (`loaddata`): rows restored, not actions.

    The instance is marked so that the memberships the loader sets next are skipped too."""
    if kwargs.get("raw"):
        instance._audit_loaded = True
    return getattr(instance, "_audit_loaded", False)


def token_before_save(sender, instance, **kwargs):
    # Every sender: the proxies (DRF's TokenProxy, our ApiToken) send their own class.
    if isinstance(instance, Token):
        token_hash_on_save(instance)


def token_saved(sender, instance, created, **kwargs):
    # Every sender, as above: the superuser's admin saves an ApiToken.
    if isinstance(instance, Token) and created and not _loaded(instance, kwargs):
        name = instance.user.get_username()
        access_record(kind="auth.token_created", message=f"API token of {name} created",
                      data={"user": name})  # fmt: skip


def token_deleted(sender, instance, **kwargs):
    name = instance.user.get_username()
    access_record(kind="auth.token_deleted", message=f"API token of {name} deleted",
                  data={"user": name})  # fmt: skip


def user_before_save(sender, instance, **kwargs):
    if kwargs.get("raw"):
        return
    old = sender.objects.filter(pk=instance.pk).first() if instance.pk else None
    instance._audit_before = user_snapshot(old) if old else None


def user_saved(sender, instance, created, update_fields=None, **kwargs):
    if _loaded(instance, kwargs):
        return
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # every login touches last_login: the login event says it
    name = instance.get_username()
    after = user_snapshot(instance)
    before = getattr(instance, "_audit_before", None)
    if created or before is None:
        data = describe_changes({}, after, [f for f in after if f != "password"])
        access_record(kind="auth.user_created", message=f"user {name} created", data=data)
        return
    changed = user_changes(before, after)
    if changed:
        access_record(
            kind="auth.user_changed",
            message=f"user {name}: {', '.join(changed)} changed",
            data=describe_changes(before, after, changed),
        )


def user_deleted(sender, instance, **kwargs):
    name = instance.get_username()
    access_record(kind="auth.user_deleted", message=f"user {name} deleted")


def group_saved(sender, instance, created, **kwargs):
    if _loaded(instance, kwargs):
        return
    verb = "created" if created else "saved"
    access_record(kind=f"auth.group_{verb}", message=f"group {instance.name} {verb}")


def group_deleted(sender, instance, **kwargs):
    access_record(kind="auth.group_deleted", message=f"group {instance.name} deleted")


M2M_VERBS = {"post_add": "added", "post_remove": "removed", "post_clear": "cleared"}


def _names(model, pks) -> list[str]:
    if model is Permission:
        rows = Permission.objects.filter(pk__in=pks).select_related("content_type")
        return sorted(f"{p.content_type.app_label}.{p.codename}" for p in rows)
    if model is Group:
        return sorted(Group.objects.filter(pk__in=pks).values_list("name", flat=True))
    return sorted(str(pk) for pk in pks)


def memberships_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    if action not in M2M_VERBS or (action != "post_clear" and not pk_set):
        return
    if getattr(instance, "_audit_loaded", False):
        return  # the loader setting a restored row's memberships
    verb = M2M_VERBS[action]
    what = "groups" if model is Group or isinstance(instance, Group) and reverse else "permissions"
    if isinstance(instance, Group) and model is Permission:
        subject, kind = f"group {instance.name}", "auth.group_permissions_changed"
    elif isinstance(instance, Group):  # group.user_set.add(...)
        subject, kind, what = f"group {instance.name}", "auth.groups_changed", "members"
    else:
        subject = f"user {instance.get_username()}"
        kind = "auth.groups_changed" if model is Group else "auth.permissions_changed"
    names = _names(model, pk_set or [])
    message = f"{subject}: {what} {verb}" + (f": {', '.join(names)}" if names else "")
    access_record(kind=kind, message=message, data={what: names, "action": verb})


def connect() -> None:
    User = get_user_model()
    user_logged_in.connect(logged_in, dispatch_uid="audit_login")
    user_logged_out.connect(logged_out, dispatch_uid="audit_logout")
    user_login_failed.connect(login_failed, dispatch_uid="audit_login_failed")
    user_locked_out.connect(locked_out, dispatch_uid="audit_locked_out")
    pre_save.connect(token_before_save, dispatch_uid="token_store_digest")
    post_save.connect(token_saved, dispatch_uid="audit_token_saved")
    post_delete.connect(token_deleted, sender=Token, dispatch_uid="audit_token_deleted")
    pre_save.connect(user_before_save, sender=User, dispatch_uid="audit_user_before")
    post_save.connect(user_saved, sender=User, dispatch_uid="audit_user_saved")
    post_delete.connect(user_deleted, sender=User, dispatch_uid="audit_user_deleted")
    post_save.connect(group_saved, sender=Group, dispatch_uid="audit_group_saved")
    post_delete.connect(group_deleted, sender=Group, dispatch_uid="audit_group_deleted")
    for through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(memberships_changed, sender=through, dispatch_uid=f"audit_{through}")
