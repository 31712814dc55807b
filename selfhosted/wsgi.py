"""WSGI entry point for gunicorn (`gunicorn selfhosted.wsgi`)."""

from __future__ import annotations

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "selfhosted.settings")
django.setup(set_prefix=False)

from selfhosted.handler import FastLaneHandler  # noqa: E402 - needs the app registry

application = FastLaneHandler()
# Everything loaded so far lives as long as the process: keep it out of the collector's walks
# (and, with several workers, keep its pages shared).
gc.freeze()
