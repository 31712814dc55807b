from __future__ import annotations

from django.urls import path

from releases.views import github, todesktop

app_name = "releases"
urlpatterns = [
    path("new-release-webhook", todesktop.release_webhook, name="todesktop-webhook"),
    path("github-webhook", github.github_webhook, name="github-webhook"),
]
