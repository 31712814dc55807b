"""Download-link routes (docs/download-links.md), relative to their mount: `/download/`, or `/` on a
`DOWNLOAD_HOSTS` host name. Order matters as in the original router: `versions/…` and
`builds/…` come before `<platform>/<artifactName>`.

Names: `downloads:<prefix>[-platform[-artifact[-arch]]]` with prefix latest, version or build.
"""

from __future__ import annotations

from django.urls import path, re_path

from downloads import views

app_name = "downloads"

_TAILS = (
    ("<str:platform>/<str:artifact_name>/<str:arch>", "-platform-artifact-arch"),
    ("<str:platform>/<str:artifact_name>", "-platform-artifact"),
    ("<str:platform>", "-platform"),
    ("", ""),
)


def _routes(prefix: str, name: str) -> list:
    """The four routes under `prefix` (`versions/<v>` → `versions/<v>/<platform>/…`)."""
    routes = []
    for tail, suffix in _TAILS:
        route = "/".join(part for part in (prefix, tail) if part)
        routes.append(path(route, views.download, name=f"{name}{suffix}"))
    return routes


urlpatterns = [
    *_routes("versions/<str:app_version>", "version"),
    *_routes("builds/<str:build_id>", "build"),
    *_routes("", "latest"),
    # `.*`: a doubled slash at the mount (`/download//`) goes back to the root route.
    re_path(r"^(?P<rest>.*)/\Z", views.trailing_slash, name="trailing-slash"),
    re_path(r"^", views.not_found, name="not-found"),
]
