"""Bucket settings for tests, written as an operator writes them: the buckets are built from
`settings.STORAGES` (releases/integrations/buckets.py). Each helper also sets the variables
`selfhosted/settings.py` derives those entries from (`STORAGE_BACKEND`, `BUCKETS_DIR`,
`AWS_S3_*`, `S3_CREDENTIALS`), so settings read the same as in a process started that way.
"""

from __future__ import annotations

from pathlib import Path

FILESYSTEM = "django.core.files.storage.FileSystemStorage"
S3 = "storages.backends.s3.S3Storage"
REGION = "us-east-1"


def filesystem_storages(settings, root: Path) -> None:
    """Both buckets as directories under `root`, as `STORAGE_BACKEND=filesystem` makes them."""
    settings.STORAGE_BACKEND = "filesystem"
    settings.BUCKETS_DIR = root
    settings.STORAGES = {
        **settings.STORAGES,
        "staging": {
            "BACKEND": FILESYSTEM,
            "OPTIONS": {"location": str(root / settings.STAGING_BUCKET)},
        },
        "production": {
            "BACKEND": FILESYSTEM,
            "OPTIONS": {"location": str(root / settings.PRODUCTION_BUCKET)},
        },
    }


def s3_storages(settings, endpoint_url: str, *, key: str = "testing") -> None:
    """Both buckets on the S3 server at `endpoint_url`, every role signing with `key`."""
    credentials = {"access_key": key, "secret_key": key}
    settings.STORAGE_BACKEND = "s3"
    settings.AWS_S3_ENDPOINT_URL = endpoint_url
    settings.AWS_S3_REGION_NAME = REGION
    settings.S3_CREDENTIALS = {role: credentials for role in settings.S3_ROLES}
    settings.STORAGES = {
        **settings.STORAGES,
        **{
            alias: {
                "BACKEND": S3,
                "OPTIONS": {
                    "bucket_name": bucket,
                    "endpoint_url": endpoint_url,
                    "region_name": REGION,
                    **credentials,
                    "file_overwrite": True,
                    "default_acl": None,
                    "querystring_auth": False,
                },
            }
            for alias, bucket in (
                ("staging", settings.STAGING_BUCKET),
                ("production", settings.PRODUCTION_BUCKET),
            )
        },
    }


def storage_options_set(settings, alias: str, **options) -> None:
    """Change some OPTIONS of one bucket's STORAGES entry (an operator's override)."""
    entry = settings.STORAGES[alias]
    changed = {**entry, "OPTIONS": {**entry.get("OPTIONS", {}), **options}}
    settings.STORAGES = {**settings.STORAGES, alias: changed}


def storage_bucket_set(settings, alias: str, name: str) -> None:
    """Point one bucket's STORAGES entry at the bucket `name` (on the filesystem, a directory
    beside the others)."""
    if settings.STORAGES[alias]["BACKEND"] == S3:
        storage_options_set(settings, alias, bucket_name=name)
    else:
        storage_options_set(settings, alias, location=str(settings.BUCKETS_DIR / name))
