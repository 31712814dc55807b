"""Tests of selfhosted/: settings, the Celery configuration, /healthz, /metrics, the request
handler's fast lane, redaction of URL credentials."""
