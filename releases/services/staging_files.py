"""Streaming a build's files into staging with a bounded pool, and verifying them (docs/staging.md).

Download threads only move bytes (origin → hashes → bucket); every database write and audit
event happens on the calling thread, which also keeps the build's staging lease fresh.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings
from django.utils import timezone

from releases.integrations import buckets, todesktop
from releases.models import Build, BuildFile, Verification
from releases.services import lifecycle
from releases.services.audit import audit_record
from releases.services.blockmaps import BlockmapInvalid, blockmap_checked
from releases.services.limits import declared_size, file_cap, plan_over_caps, stream_limit
from releases.services.manifests import BuildPlan, Expectation, expectation_check


class StagingFailed(Exception):
    """A permanent failure: the build fails with this reason (no review)."""


class _Cancelled(Exception):
    """Another download of the build failed; stop this one."""


class StagingObserver(Protocol):
    """Watches the bytes move (the progress bars of `manage.py stage`). `file_started` and
    `file_advanced` are called from pool threads, `file_finished` from the calling thread."""

    def file_started(self, name: str, size: int | None) -> None: ...

    def file_advanced(self, name: str, count: int) -> None: ...

    def file_finished(self, name: str, *, skipped: bool) -> None: ...


@dataclass
class Staged:
    name: str
    size: int
    sha256: str
    sha512: str
    md5: str
    source_url: str
    skipped: bool = False

    @property
    def hashes(self) -> dict[str, str | int]:
        return {"size": self.size, "sha256": self.sha256, "sha512": self.sha512, "md5": self.md5}


@dataclass
class _Job:
    app_id: str
    build_id: str
    name: str
    optional: bool  # a blockmap: 404 is normal
    expectations: list[Expectation] = field(default_factory=list)
    previous: dict | None = None  # the BuildFile of an earlier run, if it finished this file

    @property
    def key(self) -> str:
        return f"{self.build_id}/{self.name}"


class _Hasher:
    def __init__(self) -> None:
        self.digests = {name: hashlib.new(name) for name in ("sha256", "sha512", "md5")}
        self.size = 0

    def wrap(
        self,
        chunks: Iterable[bytes],
        stop: threading.Event | None = None,
        *,
        limit: int | None = None,
        too_large: str = "",
    ) -> Iterator[bytes]:
        for chunk in chunks:
            if stop is not None and stop.is_set():
                raise _Cancelled()
            self.size += len(chunk)
            if limit is not None and self.size > limit:
                # Stop an oversized (or endless) body now: raising here, before the chunk is
                # handed on, makes the bucket drop the partial object (temp file, multipart).
                raise StagingFailed(too_large)
            for digest in self.digests.values():
                digest.update(chunk)
            yield chunk

    def staged(self, name: str, source_url: str) -> Staged:
        hexes = {name: digest.hexdigest() for name, digest in self.digests.items()}
        return Staged(name=name, size=self.size, source_url=source_url, **hexes)


def files_stage(*, build: Build, plan: BuildPlan, observer: StagingObserver | None = None) -> None:
    """Stage the manifests (already in memory), then every artifact and blockmap."""
    over = plan_over_caps(plan)
    if over:
        raise StagingFailed(over)
    bucket = buckets.staging()
    previous = {
        row.name: {"size": row.size, "sha256": row.sha256, "sha512": row.sha512, "md5": row.md5}
        for row in build.files.filter(staged_at__isnull=False)
    }
    for name, body in plan.manifests.items():
        job = _Job(build.app_id, build.build_id, name, False, previous=previous.get(name))
        _record(build, _manifest_stage(bucket, job, body))
    jobs = [
        _Job(build.app_id, build.build_id, name, False, planned.expectations, previous.get(name))
        for name, planned in plan.files.items()
    ] + [
        _Job(build.app_id, build.build_id, name, True, [], previous.get(name))
        for name in plan.blockmaps
    ]
    _run_pool(build, bucket, jobs, observer)


def _run_pool(
    build: Build, bucket: buckets.Bucket, jobs: list[_Job], observer: StagingObserver | None = None
) -> None:
    stop = threading.Event()
    heartbeat = max(settings.STAGING_LEASE_SECONDS / 4, 0.2)
    with ThreadPoolExecutor(settings.STAGING_CONCURRENCY, thread_name_prefix="staging") as pool:
        pending: set[Future] = {
            pool.submit(_file_stage, bucket, job, stop, observer) for job in jobs
        }
        try:
            while pending:
                done, pending = wait(pending, timeout=heartbeat, return_when=FIRST_COMPLETED)
                lifecycle.lease_renew(build=build)
                for future in done:
                    staged = future.result()
                    if staged is not None:
                        _record(build, staged)
                        if observer is not None:
                            observer.file_finished(staged.name, skipped=staged.skipped)
        except BaseException:
            stop.set()  # running downloads stop at their next chunk; queued ones are cancelled
            for future in pending:
                future.cancel()
            raise


def _still_staged(bucket: buckets.Bucket, job: _Job) -> bool:
    """An earlier run staged this file: same size in the bucket, hashes match the manifests."""
    if job.previous is None:
        return False
    info = bucket.head(job.key)
    if info is None or info.size != job.previous["size"]:
        return False
    return all(expectation_check(e, job.previous) is None for e in job.expectations)


def _skipped(job: _Job, url: str) -> Staged:
    hashes = {k: job.previous[k] for k in ("size", "sha256", "sha512", "md5")}
    return Staged(name=job.name, source_url=url, skipped=True, **hashes)


def _manifest_stage(bucket: buckets.Bucket, job: _Job, body: bytes) -> Staged:
    url = todesktop.shown(todesktop.file_url(app_id=job.app_id, name=job.name))
    if job.previous and job.previous["sha256"] == hashlib.sha256(body).hexdigest():
        if _still_staged(bucket, job):
            return _skipped(job, url)
    hasher = _Hasher()
    content_type = buckets.content_type_for(job.name)
    bucket.write(job.key, hasher.wrap([body]), content_type=content_type, expected_size=len(body))
    return hasher.staged(job.name, url)


def _file_stage(
    bucket: buckets.Bucket,
    job: _Job,
    stop: threading.Event,
    observer: StagingObserver | None = None,
) -> Staged | None:
    """Runs in a pool thread: download → hash → bucket, streamed (never a whole file in memory)."""
    url = todesktop.shown(todesktop.file_url(app_id=job.app_id, name=job.name))
    if _still_staged(bucket, job):
        return _skipped(job, url)
    declared = declared_size(job.expectations)
    limit = stream_limit(job.name, declared)
    try:
        download = todesktop.Download(app_id=job.app_id, name=job.name, limit=file_cap(job.name)[1])
        hasher = _Hasher()
        chunks = hasher.wrap(download.chunks(), stop, limit=limit.limit, too_large=limit.too_large)
        if job.optional:
            chunks = blockmap_checked(chunks, limit=settings.MAX_BLOCKMAP_BYTES)
        if observer is not None:
            observer.file_started(job.name, download.size)
            chunks = _observed(chunks, job.name, observer)
        content_type = buckets.content_type_for(job.name)
        expected = declared or download.size
        info = bucket.write(job.key, chunks, content_type=content_type, expected_size=expected)
    except todesktop.NotFound:
        if job.optional:
            return None
        raise StagingFailed(f"{job.name}: not found at ToDesktop (404 for {url})")
    except todesktop.OriginUnavailable:
        raise
    except todesktop.OriginError as exc:
        raise StagingFailed(f"{job.name}: {exc}")
    except BlockmapInvalid as exc:
        raise StagingFailed(f"{job.name}: not an electron-builder blockmap: {exc}")
    if info.size != hasher.size:
        raise buckets.BucketError(f"{job.key}: wrote {hasher.size} bytes, bucket has {info.size}")
    return hasher.staged(job.name, url)


def _observed(chunks: Iterable[bytes], name: str, observer: StagingObserver) -> Iterator[bytes]:
    for chunk in chunks:
        observer.file_advanced(name, len(chunk))
        yield chunk


def _record(build: Build, staged: Staged) -> None:
    if staged.skipped:
        audit_record(
            kind="staging.file_skipped",
            message=f"{staged.name}: already staged with matching size and hashes",
            build=build,
            data={"name": staged.name, **staged.hashes},
        )
        return
    BuildFile.objects.update_or_create(
        build=build,
        name=staged.name,
        defaults={
            **staged.hashes,
            "content_type": buckets.content_type_for(staged.name),
            "source_url": staged.source_url,
            "verification": Verification.PENDING,
            "verification_detail": "",
            "staged_at": timezone.now(),
        },
    )
    audit_record(
        kind="staging.file_staged",
        message=f"{staged.name}: {staged.size} bytes, sha256 {staged.sha256}",
        build=build,
        data={"name": staged.name, "key": f"{build.build_id}/{staged.name}", **staged.hashes},
    )


def files_verify(*, build: Build, plan: BuildPlan) -> str:
    """Check every sha512/sha256/size the manifests give; store the result per file."""
    problems: list[str] = []
    counts = {Verification.VERIFIED: 0, Verification.UNCHECKED: 0, Verification.MISMATCH: 0}
    for row in build.files.all():
        planned = plan.files.get(row.name)
        expectations = planned.expectations if planned else []
        actual = {"size": row.size, "sha256": row.sha256, "sha512": row.sha512}
        mismatches = [m for e in expectations if (m := expectation_check(e, actual))]
        if mismatches:
            verification, detail = Verification.MISMATCH, "\n".join(mismatches)
            problems += [f"{row.name}: {mismatch}" for mismatch in mismatches]
        elif expectations:
            verification = Verification.VERIFIED
            detail = "\n".join(f"{e.field} matches {e.source}" for e in expectations)
        else:
            verification, detail = Verification.UNCHECKED, "no manifest gives a hash for this file"
        counts[verification] += 1
        BuildFile.objects.filter(pk=row.pk).update(
            verification=verification, verification_detail=detail
        )
    if problems:
        raise StagingFailed("verification failed: " + "; ".join(problems))
    return (
        f"{counts[Verification.VERIFIED]} files verified against the manifests, "
        f"{counts[Verification.UNCHECKED]} without a published hash (manifests, blockmaps)"
    )
