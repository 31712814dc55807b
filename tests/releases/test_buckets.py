"""One suite, both backends: the filesystem and a real S3-compatible server on loopback."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from releases.integrations import buckets
from releases.integrations.buckets import BucketError, InvalidKey, ObjectNotFound
from tests.buckets_support import FILESYSTEM, storage_bucket_set, storage_options_set

MiB = 1024 * 1024


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def peak_rss_growth(fn) -> int:
    """Bytes of resident memory gained at the peak while `fn` runs (Linux VmHWM reset)."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets the peak RSS counter to the current RSS
    before = _rss_kib("VmRSS")
    fn()
    return (_rss_kib("VmHWM") - before) * 1024


def generated(total: int, chunk: int = MiB):
    """`total` bytes of varied content, produced chunk by chunk (never held whole)."""
    block = os.urandom(chunk)
    sent = 0
    index = 0
    while sent < total:
        size = min(chunk, total - sent)
        piece = index.to_bytes(8, "big") + block[8:size] if size > 8 else block[:size]
        yield piece
        sent += size
        index += 1


def test_a_300_mb_streamed_write_keeps_memory_flat(staging):
    total = 300 * MiB
    digest = hashlib.sha256()

    def stream():
        for chunk in generated(total):
            digest.update(chunk)
            yield chunk

    staging.write_bytes("warm/up", b"x")  # load the client (botocore's models) before measuring
    info = {}
    growth = peak_rss_growth(lambda: info.update(obj=staging.write("big/blob.bin", stream())))
    assert info["obj"].size == total
    print(f"peak RSS growth: {growth / MiB:.1f} MiB")
    assert growth < 64 * MiB, f"peak RSS grew by {growth / MiB:.1f} MiB"
    check = hashlib.sha256()
    for chunk in staging.read("big/blob.bin"):
        check.update(chunk)
    assert check.hexdigest() == digest.hexdigest()


def test_it_reads_single_and_several_byte_ranges(staging):
    data = bytes(range(256)) * 4096  # 1 MiB with a known pattern
    staging.write_bytes("b1/file.bin", data)
    assert b"".join(staging.read("b1/file.bin", 0, 10)) == data[:10]
    assert b"".join(staging.read("b1/file.bin", 1000, 5000)) == data[1000:6000]
    assert b"".join(staging.read("b1/file.bin", len(data) - 7)) == data[-7:]
    ranges = [(0, 1), (300_000, 70_000), (len(data) - 1, 1), (5, 0)]
    for offset, length in ranges:
        assert (
            b"".join(staging.read("b1/file.bin", offset, length)) == data[offset : offset + length]
        )


def test_head_reports_size_etag_date_and_type_and_the_etag_changes_with_content(staging):
    staging.write_bytes("b1/latest.yml", b"version: 1.0.0\n")
    first = staging.head("b1/latest.yml")
    assert first.size == 15
    assert first.etag and '"' not in first.etag
    assert first.http_etag == f'"{first.etag}"'
    assert first.last_modified.tzinfo is not None
    assert first.content_type == "text/yaml"
    staging.write_bytes("b1/latest.yml", b"version: 1.0.1-beta\n")
    second = staging.head("b1/latest.yml")
    assert second.size == 20
    assert second.etag != first.etag


def test_it_lists_by_prefix(staging):
    for key in ["b1/a.exe", "b1/b.yml", "b10/c.dmg", "b2/d.zip", "root.json"]:
        staging.write_bytes(key, b"x")
    assert sorted(o.key for o in staging.list("b1/")) == ["b1/a.exe", "b1/b.yml"]
    assert sorted(o.key for o in staging.list("b1")) == ["b1/a.exe", "b1/b.yml", "b10/c.dmg"]
    assert len(list(staging.list())) == 5
    assert list(staging.list("nothing/")) == []
    assert all(o.size == 1 for o in staging.list())


def test_server_side_copy_from_staging_to_production(staging, production):
    data = os.urandom(3 * MiB + 123)
    staging.write_bytes("b1/My App Setup 1.0.0.exe", data)
    copied = production.copy_from(
        buckets.staging(role="promoter"), "b1/My App Setup 1.0.0.exe", "My App Setup 1.0.0.exe"
    )
    assert copied.size == len(data)
    assert production.read_bytes("My App Setup 1.0.0.exe") == data
    # the source stays where it was
    assert staging.read_bytes("b1/My App Setup 1.0.0.exe") == data


def test_missing_keys_are_reported_not_raised_as_errors(staging, production):
    assert staging.head("b1/nope.exe") is None
    assert not staging.exists("b1/nope.exe")
    with pytest.raises(ObjectNotFound):
        b"".join(staging.read("b1/nope.exe"))
    with pytest.raises(ObjectNotFound):
        production.copy_from(buckets.staging(role="promoter"), "b1/nope.exe")
    staging.delete("b1/nope.exe")  # deleting a missing key is fine


def test_delete_removes_the_object(staging):
    staging.write_bytes("b1/gone.txt", b"bye")
    staging.delete("b1/gone.txt")
    assert staging.head("b1/gone.txt") is None


@pytest.mark.parametrize(
    "name",
    [
        "My App Setup 1.2.0 - Build 250210vv2q75v93-x64.exe",
        "Café Ünïcødé 应用 1.0.dmg",
        "emoji 🚀 name.zip",
    ],
)
def test_names_with_spaces_and_unicode_round_trip(staging, production, name):
    key = f"250210vv2q75v93/{name}"
    staging.write_bytes(key, b"payload " + name.encode())
    assert staging.head(key).size == len(b"payload " + name.encode())
    assert [o.key for o in staging.list("250210vv2q75v93/")] == [key]
    production.copy_from(buckets.staging(role="promoter"), key, name)
    assert production.read_bytes(name) == b"payload " + name.encode()


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "a/../b", "..", "a/./b", "a\\b", "a\x00b", "a\nb", "a/"]
    # too long for S3 (1,024 bytes) or a file name (255 bytes), and unencodable
    + ["b/" + "x" * 256, "/".join(["y" * 200] * 6), "lone\ud800surrogate"],
)
def test_it_refuses_keys_that_could_escape_the_bucket(staging, key):
    with pytest.raises(InvalidKey):
        staging.write_bytes(key, b"x")
    with pytest.raises(InvalidKey):
        staging.head(key)


def test_a_failed_stream_leaves_the_previous_object_intact(staging):
    staging.write_bytes("b1/file.bin", b"old contents")

    def broken():
        yield b"x" * (9 * MiB)  # past one S3 part, so S3 is in a multipart upload
        raise ConnectionError("origin dropped the connection")

    with pytest.raises(ConnectionError):
        staging.write("b1/file.bin", broken())
    assert staging.read_bytes("b1/file.bin") == b"old contents"
    assert [o.key for o in staging.list("b1/")] == ["b1/file.bin"]  # no temp files left behind


def test_check_passes_for_reachable_buckets_and_fails_for_a_missing_one(
    staging, production, settings
):
    staging.write_bytes("b1/file.bin", b"data")
    assert staging.check() is None
    assert production.check() is None

    storage_bucket_set(settings, "staging", "no-such-bucket")
    missing = buckets.staging()
    with pytest.raises(BucketError):
        missing.check()
    # the check looks and never creates: a vanished bucket stays a failure
    with pytest.raises(BucketError):
        missing.check()
    if settings.STORAGE_BACKEND == "filesystem":
        assert not (settings.BUCKETS_DIR / "no-such-bucket").exists()


def test_open_local_gives_the_file_and_its_validators_on_the_filesystem_only(staging):
    info = staging.write_bytes("b1/file.bin", b"local bytes")
    local = staging.open_local("b1/file.bin")
    if not isinstance(staging, buckets.FilesystemBucket):
        assert local is None  # S3: serving reads through `read` (or redirects)
        assert staging.direct_urls
        return
    handle, opened = local
    with handle:
        assert handle.read() == b"local bytes"
    assert opened == info == staging.head("b1/file.bin")
    assert not staging.direct_urls
    with pytest.raises(BucketError):
        staging.presigned_get("b1/file.bin", filename=None, expires=60)
    with pytest.raises(ObjectNotFound):
        staging.open_local("b1/missing.bin")


def test_s3_failures_leave_as_bucket_errors_never_as_botocore_ones(s3_buckets, settings):
    storage_bucket_set(settings, "staging", "no-such-bucket")
    missing = buckets.staging()
    operations = {
        "write": lambda: missing.write_bytes("b1/file.bin", b"data"),
        "read": lambda: missing.read_bytes("b1/file.bin"),
        "list": lambda: list(missing.list("b1/")),
        "delete": lambda: missing.delete("b1/file.bin"),
        "leftovers": lambda: list(missing.leftovers(before=datetime.now(UTC))),
        "check": missing.check,
    }
    for name, operation in operations.items():
        with pytest.raises(buckets.StorageUnavailable) as raised:
            operation()
        assert raised.value.code == "NoSuchBucket", name
        assert "botocore" not in type(raised.value).__module__


def test_a_missing_s3_key_is_object_not_found_and_an_empty_range_reads_nothing(s3_buckets):
    staging = buckets.staging()
    with pytest.raises(ObjectNotFound):
        staging.read_bytes("b1/missing.bin")
    assert staging.head("b1/missing.bin") is None
    staging.write_bytes("b1/file.bin", b"0123456789")
    assert b"".join(staging.read("b1/file.bin", 10)) == b""  # S3 answers InvalidRange


def test_the_buckets_are_what_an_override_of_storages_describes(fs_buckets, settings, tmp_path):
    default = settings.BUCKETS_DIR / settings.PRODUCTION_BUCKET
    elsewhere = tmp_path / "mounted" / "releases"
    storages = {
        **settings.STORAGES,
        "production": {"BACKEND": FILESYSTEM, "OPTIONS": {"location": str(elsewhere)}},
    }
    with override_settings(STORAGES=storages):
        buckets.buckets_prepare()
        for role in ("production_reader", "promoter"):
            assert buckets.production(role=role).location == str(elsewhere)
        buckets.production(role="promoter").write_bytes("latest.yml", b"overridden")
        assert (elsewhere / "latest.yml").read_bytes() == b"overridden"
        assert buckets.production().read_bytes("latest.yml") == b"overridden"
    # Back to the configuration of before, without any reset by hand.
    assert buckets.production().location == str(default)
    assert not buckets.production().exists("latest.yml")
    assert not (default / "latest.yml").exists()


def test_an_override_of_storages_names_the_s3_bucket_and_endpoint(s3_buckets, settings):
    s3_buckets.client().create_bucket(Bucket="operators-own-bucket")
    storage_options_set(settings, "production", bucket_name="operators-own-bucket")

    promoter = buckets.production(role="promoter")
    promoter.write_bytes("latest.yml", b"in their bucket")

    assert promoter.location == buckets.production().location == "s3://operators-own-bucket"
    answer = s3_buckets.client().get_object(Bucket="operators-own-bucket", Key="latest.yml")
    assert answer["Body"].read() == b"in their bucket"
    storage_options_set(settings, "production", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(buckets.StorageUnavailable):
        buckets.production().read_bytes("latest.yml")


def test_a_storages_backend_that_is_not_a_bucket_is_refused_by_name(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staging": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    with pytest.raises(ImproperlyConfigured, match=r"STORAGES\['staging'\]: .*InMemoryStorage"):
        buckets.staging()


@pytest.mark.parametrize("option", ["location", "custom_domain"])
def test_an_s3_option_the_buckets_would_not_apply_is_refused_by_name(s3_buckets, settings, option):
    # django-storages would put keys under a prefix (or rewrite their URLs) with these; the
    # buckets address objects at the bucket's root, so half-applying one would promote to a
    # place the operator does not expect.
    storage_options_set(settings, "production", **{option: "releases"})
    with pytest.raises(ImproperlyConfigured, match=rf"STORAGES\['production'\]: OPTIONS {option}"):
        buckets.production(role="promoter")
    with pytest.raises(ImproperlyConfigured, match=option):
        buckets.production()
    assert s3_buckets.client().list_objects_v2(Bucket=settings.PRODUCTION_BUCKET)["KeyCount"] == 0
    # The staging bucket, configured without it, is unaffected.
    buckets.staging().write_bytes("b1/file.bin", b"x")


def test_manage_check_names_every_storages_entry_the_buckets_refuse(s3_buckets, settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    call_command("check")  # the default S3 entries are fine
    storage_options_set(settings, "staging", location="prefix")
    storage_options_set(settings, "production", custom_domain="cdn.example.com")
    with pytest.raises(SystemCheckError) as raised:
        call_command("check")
    text = str(raised.value)
    assert "(releases.E001) STORAGES['staging']: OPTIONS location not supported on S3" in text
    assert "(releases.E001) STORAGES['production']: OPTIONS custom_domain" in text
