from __future__ import annotations

from django.apps import AppConfig


class DownloadsConfig(AppConfig):
    name = "downloads"
    verbose_name = "Download links"
