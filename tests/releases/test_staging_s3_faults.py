"""An S3 that answers 500 now and then: staging still ends with every file staged and verified.

moto cannot be told to fail, so the tests' S3 proxy (tests/fakes/recording_proxy.py) sits
between the staging code and the moto server: it answers the first N writes (PUT) with S3's own
500 InternalError and forwards everything else unchanged.
"""

from __future__ import annotations

import hashlib

import pytest

from releases.models import Build, BuildStatus, ReleaseRequest
from releases.services.staging import build_stage
from tests.fakes.todesktop_origin import FakeBuild, start_origin

pytestmark = pytest.mark.django_db


@pytest.fixture
def faulty_s3(s3_proxy):
    s3_proxy.fail_puts = 3
    return s3_proxy


def test_s3_500s_are_retried_and_the_build_is_staged(faulty_s3, s3_buckets, settings):
    dmg = FakeBuild().layout["mac"]["dmg"]["x64"]
    # One file above the 8 MiB part size, so multipart uploads meet the faults too.
    fake = FakeBuild(platforms=("linux", "mac"), sizes={dmg: 9 * 1024 * 1024})
    origin = start_origin(fake)
    settings.TODESKTOP_DOWNLOAD_BASE_URL = origin.url
    settings.HTTP_RETRY_BACKOFF_SECONDS = 0.01
    build = Build.objects.create(build_id=fake.build_id, app_id=fake.app_id)
    release = ReleaseRequest.objects.create(build=build, payload={})
    try:
        build_stage(release_id=release.pk)
    finally:
        origin.stop()

    assert [e.status for e in faulty_s3.record].count(500) == 3
    build.refresh_from_db()
    assert build.status in (BuildStatus.STAGED, BuildStatus.IN_REVIEW)
    client = s3_buckets.client()  # straight to moto, not through the proxy
    listed = client.list_objects_v2(Bucket=settings.STAGING_BUCKET, Prefix=f"{fake.build_id}/")
    keys = {item["Key"].split("/", 1)[1] for item in listed["Contents"]}
    assert keys == set(fake.documents()) | set(fake.files)
    body = client.get_object(Bucket=settings.STAGING_BUCKET, Key=f"{fake.build_id}/{dmg}")
    assert hashlib.sha256(body["Body"].read()).hexdigest() == fake.files[dmg].hashes["sha256"]
    assert build.files.get(name=dmg).verification == "verified"
