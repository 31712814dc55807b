"""Tests of releases/: webhooks, staging, review, promotion, rollback, rollouts, notifications,
CDN purge, the admin, the API, the audit trail and the management commands."""
