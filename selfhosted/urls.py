"""URL layout (docs/configuration.md): admin, API, webhooks, the feed and the download links.

`FEED_HOSTS` / `DOWNLOAD_HOSTS` additionally mount the feed / downloads at `/` for those host
names (see selfhosted.hosts).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from releases.admin_api_token import my_api_token
from selfhosted.health import healthz
from selfhosted.metrics import metrics

admin.site.site_header = "Desktop releases"
admin.site.site_title = "Desktop releases"
admin.site.index_title = "Audit trail"
# The index shows the chain's status and what production serves (releases/templatetags).
admin.site.index_template = "admin/releases/index.html"
# No public site to "view": the feed and downloads have no pages of their own.
admin.site.site_url = None

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    # Before admin/, whose catch-all would answer 404 for it (docs/api.md: My API token).
    path("admin/my-api-token/", my_api_token, name="my-api-token"),
    path("admin/", admin.site.urls),
    path("api/adoption/", include("adoption.urls")),
    path("api/", include(("releases.api", "api"))),
    path("", include("releases.urls")),
    path("update/", include("cdn.urls")),
    path("download/", include("downloads.urls")),
]
