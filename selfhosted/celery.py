"""The Celery app: two queues, late acknowledgement, prefetch 1 (docs/processes.md).

The configuration lives in `selfhosted.celeryconfig`, loaded lazily from Django's settings.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "selfhosted.settings")

app = Celery("selfhosted")
app.config_from_object("selfhosted.celeryconfig")
app.autodiscover_tasks()
