"""The storage interface: the `staging` and `production` buckets (docs/processes.md,
docs/bucket-layout.md).

Everything else in the project reads and writes buckets through this module only. Two
implementations share one small interface:

- `FilesystemBucket`: `DATA_DIR/buckets/<bucket name>/`, atomic writes (temp file + rename),
  "server-side" copy as a hard link when both buckets share a file system.
- `S3Bucket`: any S3-compatible store through django-storages/boto3, multipart uploads with one
  bounded buffer, ranged GETs, and real server-side copies (no bytes through this process).

Every failure leaves as one of this module's errors (`BucketError` and its kinds), never as a
botocore/boto3 exception, so no other module imports them.

Both buckets are built from `settings.STORAGES["staging"]` and `["production"]`: the backend
(Django's FileSystemStorage or django-storages' S3Storage) and its OPTIONS (the directory; the
bucket name, endpoint and region), which settings fill from STORAGE_BACKEND and an operator may
override (docs/configuration.md). This module adds only the S3 client's retries and timeouts.

On S3 each process role has its own credentials (docs/processes.md): `staging(role=...)` and
`production(role=...)` pick them, so a web process can be given no production write key at all.
Each STORAGES entry carries the credentials of its bucket's usual role (staging_writer,
production_reader); the promoter's come from `S3_CREDENTIALS`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import mimetypes
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.http import content_disposition_header
from django.utils.module_loading import import_string

CHUNK_SIZE = 1024 * 1024
# S3 parts are buffered one at a time: memory per upload is one part, whatever the file size.
S3_PART_SIZE = 8 * 1024 * 1024
# copy_object handles sources up to 5 GiB; beyond that S3 needs a multipart copy.
S3_SINGLE_COPY_LIMIT = 5 * 1024**3

# Filesystem writes go to a temp file beside the target, renamed into place when complete.
TEMP_PREFIX = ".tmp-"
# A filesystem write re-checks the free space every this many bytes (a statvfs call).
DISK_CHECK_EVERY = 16 * 1024 * 1024

MAX_KEY_BYTES = 1024
MAX_NAME_BYTES = 255

CONTENT_TYPES = {
    ".exe": "application/vnd.microsoft.portable-executable",
    ".msi": "application/x-msi",
    ".appx": "application/vnd.ms-appx",
    ".7z": "application/x-7z-compressed",
    ".yml": "text/yaml",
    ".yaml": "text/yaml",
    ".json": "application/json",
    ".dmg": "application/x-apple-diskimage",
    ".pkg": "application/octet-stream",
    ".zip": "application/zip",
    ".appimage": "application/x-executable",
    ".deb": "application/vnd.debian.binary-package",
    ".rpm": "application/x-rpm",
    ".snap": "application/vnd.snap",
    ".blockmap": "application/octet-stream",
}


def content_type_for(name: str) -> str:
    """A sensible Content-Type for a release file name (docs/staging.md)."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class BucketError(Exception):
    """A bucket operation failed."""


class ObjectNotFound(BucketError, KeyError):
    """The key does not exist in the bucket."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message plain
        return str(self.args[0]) if self.args else "object not found"


class StorageUnavailable(BucketError):
    """The store could not be reached or refused the request (an S3 error or a network
    failure); `code` holds S3's error code when it answered one."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class InvalidKey(BucketError, ValueError):
    """A key that could escape the bucket or is not a file name."""


class DiskFull(BucketError):
    """A write would leave the bucket's disk under MIN_FREE_DISK_BYTES (transient: retried
    once space is freed; the disk also holds the database in the embedded setup)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # without quotes
    last_modified: datetime
    content_type: str | None = None

    @property
    def http_etag(self) -> str:
        return f'"{self.etag}"'


@dataclass(frozen=True)
class Leftover:
    """A write that never finished (its writer died): an incomplete multipart upload on S3, a
    `.tmp-` file on the filesystem. Neither is an object: `list` and readers never see it."""

    key: str  # S3: the key the upload was for; filesystem: the temp file's path in the bucket
    started: datetime
    size: int | None = None  # filesystem only (S3 would need a request per upload)
    upload_id: str = ""  # S3 only


def check_key(key: str) -> str:
    """Reject keys that are empty, absolute, contain `..`/`.` segments, backslashes or controls."""
    if not key or key.startswith("/") or key.endswith("/"):
        raise InvalidKey(f"invalid key {key!r}")
    if "\\" in key or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise InvalidKey(f"invalid key {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKey(f"invalid key {key!r}")
    try:
        encoded = key.encode("utf-8")  # a lone surrogate cannot be stored anywhere
    except UnicodeEncodeError:
        raise InvalidKey(f"invalid key {key!r}") from None
    if not key_storable(key):
        raise InvalidKey(f"key too long ({len(encoded)} bytes)")
    return key


def key_storable(key: str) -> bool:
    """Whether any backend can hold `key`'s bytes: valid UTF-8 (no lone surrogate), at most
    `MAX_KEY_BYTES` and `MAX_NAME_BYTES` per segment. S3 keys stop at 1,024 bytes and file names
    at 255 bytes: such keys are refused early and uniformly rather than failing differently on
    each backend."""
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    parts = encoded.split(b"/")
    return len(encoded) <= MAX_KEY_BYTES and all(len(part) <= MAX_NAME_BYTES for part in parts)


class Bucket:
    """The interface. Keys are `/`-separated; ranges are (offset, length)."""

    name: str

    def write(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        content_type: str | None = None,
        expected_size: int | None = None,
    ) -> ObjectInfo:
        """Stream `chunks` into `key`; readers see the old object or the whole new one.

        `expected_size` (when known) lets a filesystem bucket refuse a write that would leave
        its disk under MIN_FREE_DISK_BYTES before writing anything (`DiskFull`)."""
        raise NotImplementedError

    def read(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream `length` bytes from `offset` (all remaining bytes when None)."""
        raise NotImplementedError

    def head(self, key: str) -> ObjectInfo | None:
        raise NotImplementedError

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        raise NotImplementedError

    def copy_from(self, source: Bucket, key: str, dest_key: str | None = None) -> ObjectInfo:
        """Server-side copy of `source`'s `key` into this bucket (no bytes through us on S3)."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise BucketError when the bucket cannot be reached (for /healthz)."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Create what this process may create for the bucket (`migrate`): a filesystem bucket's
        directory. S3 buckets are created by the operator, never by us."""

    @property
    def location(self) -> str:
        """Where the bucket is, for people (`manage.py demo`): a directory or `s3://<name>`."""
        raise NotImplementedError

    # What serving needs to pick its fastest path, whatever the backend.
    direct_urls = False  # True: `presigned_get` gives a URL that fetches from the store itself

    def open_local(self, key: str) -> tuple[BinaryIO, ObjectInfo] | None:
        """A local file open on `key` and its validators, taken from the same open file (so
        they match the bytes even if the key is replaced meanwhile): a server can then send it
        with sendfile(2). None when this backend keeps no local files (read through `read`).
        A missing key raises ObjectNotFound."""
        return None

    def presigned_get(self, key: str, *, filename: str | None, expires: int) -> str:
        """A URL that GETs `key` straight from the store (only when `direct_urls`)."""
        raise BucketError(f"{self.name}: no direct URLs on this backend")

    def leftovers(self, *, before: datetime) -> Iterator[Leftover]:
        """Unfinished writes started before `before` (see `Leftover`)."""
        raise NotImplementedError

    def leftover_remove(self, leftover: Leftover) -> None:
        """Remove an unfinished write (abort the upload, delete the temp file)."""
        raise NotImplementedError

    # Small helpers shared by both backends.
    def read_bytes(self, key: str) -> bytes:
        return b"".join(self.read(key))

    def write_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> ObjectInfo:
        return self.write(key, [data], content_type=content_type)

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class FilesystemBucket(Bucket):
    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def prepare(self):
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def location(self):
        return str(self.root)

    def _info(self, key: str, stat: os.stat_result) -> ObjectInfo:
        # Like nginx's ETag: mtime and size; files are never modified in place (atomic renames),
        # so a new object always gets a new ETag.
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            etag=f"{stat.st_mtime_ns:x}-{stat.st_size:x}",
            last_modified=datetime.fromtimestamp(int(stat.st_mtime), tz=UTC),
            content_type=content_type_for(key),
        )

    def _temp_path(self, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"

    def write(self, key, chunks, *, content_type=None, expected_size=None):
        target = self.path(key)
        self._space_check(key, target.parent, expected_size or 0)
        temp = self._temp_path(target)
        try:
            with open(temp, "wb") as handle:
                self._copy(key, chunks, handle, expected_size or 0)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return self._info(key, target.stat())

    def _copy(self, key: str, chunks: Iterable[bytes], handle: BinaryIO, expected: int) -> None:
        written = checked = 0
        for chunk in chunks:
            handle.write(chunk)
            written += len(chunk)
            if written - checked >= DISK_CHECK_EVERY:
                # A file bigger than announced, or other writers, can still fill the disk.
                checked = written
                self._space_check(key, Path(handle.name).parent, max(expected - written, 0))

    def _space_check(self, key: str, directory: Path, needed: int) -> None:
        reserve = settings.MIN_FREE_DISK_BYTES
        existing = next((p for p in (directory, *directory.parents) if p.exists()), directory)
        free = shutil.disk_usage(existing).free
        if free - needed < reserve:
            raise DiskFull(
                f"{key}: not enough free disk space for the {self.name} bucket: {_size(free)} "
                f"free, the file needs {_size(needed)} more and MIN_FREE_DISK_BYTES keeps "
                f"{_size(reserve)} free"
            )

    def open(self, key: str) -> BinaryIO:
        """A real file object (lets the feed use sendfile)."""
        try:
            return open(self.path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None

    def open_local(self, key):
        # One open + fstat: the feed's hot path.
        handle = self.open(key)
        try:
            return handle, self._info(key, os.fstat(handle.fileno()))
        except BaseException:
            handle.close()
            raise

    def read(self, key, offset=0, length=None):
        handle = self.open(key)

        def stream() -> Iterator[bytes]:
            with handle:
                handle.seek(offset)
                remaining = length
                while remaining is None or remaining > 0:
                    size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                    chunk = handle.read(size)
                    if not chunk:
                        return
                    if remaining is not None:
                        remaining -= len(chunk)
                    yield chunk

        return stream()

    def head(self, key):
        try:
            stat = self.path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not os.path.isfile(self.path(key)):
            return None
        return self._info(key, stat)

    def list(self, prefix=""):
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for filename in sorted(filenames):
                if filename.startswith(TEMP_PREFIX):
                    continue
                full = Path(dirpath) / filename
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        yield self._info(key, full.stat())

    def copy_from(self, source, key, dest_key=None):
        if not isinstance(source, FilesystemBucket):
            raise BucketError("copy between different storage backends is not supported")
        dest_key = dest_key or key
        src = source.path(key)
        if not src.is_file():
            raise ObjectNotFound(key)
        target = self.path(dest_key)
        temp = self._temp_path(target)
        try:
            try:
                # Objects are immutable once written (writes replace, never modify), so a hard
                # link is a safe zero-copy "server-side copy" on one file system.
                os.link(src, temp)
            except OSError:
                self._space_check(dest_key, target.parent, src.stat().st_size)
                shutil.copy2(src, temp)
            os.replace(temp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return self._info(dest_key, target.stat())

    def delete(self, key):
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def leftovers(self, *, before):
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for filename in sorted(n for n in filenames if n.startswith(TEMP_PREFIX)):
                path = Path(dirpath) / filename
                try:
                    stat = path.stat()
                except FileNotFoundError:  # renamed into place meanwhile
                    continue
                started = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
                if started < before:
                    key = path.relative_to(self.root).as_posix()
                    yield Leftover(key=key, started=started, size=stat.st_size)

    def leftover_remove(self, leftover):
        name = leftover.key.rsplit("/", 1)[-1]
        if not name.startswith(TEMP_PREFIX):
            raise InvalidKey(f"{leftover.key!r} is not a temp file")
        with contextlib.suppress(FileNotFoundError):
            self.path(leftover.key).unlink()

    def check(self):
        # Look, never create: a bucket directory that vanished (an unmounted volume) must show
        # as a failure, not be silently replaced by an empty one.
        if not self.root.is_dir():
            raise BucketError(f"{self.root}: the bucket directory is missing")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise BucketError(f"{self.root}: not readable")


class _ChunkReader:
    """Turn an iterator of chunks into exact-size blocks without holding more than one block."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._leftover = b""

    def block(self, size: int) -> bytes:
        parts = [self._leftover] if self._leftover else []
        have = len(self._leftover)
        while have < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        del parts
        self._leftover = data[size:]
        return data[:size] if len(data) > size else data


class S3Bucket(Bucket):
    direct_urls = True

    def __init__(self, name: str, storage) -> None:
        self.name = name
        self._storage = storage  # a django-storages S3Storage with this role's credentials

    @functools.cached_property
    def client(self):
        return self._storage.connection.meta.client

    @property
    def location(self):
        return f"s3://{self.name}"

    def _call(self, operation: str, *args, **kwargs):
        """One client call; botocore's errors leave as ours (a missing key: ObjectNotFound)."""
        with _s3_errors(kwargs.get("Key", "")):
            return getattr(self.client, operation)(*args, **kwargs)

    def _pages(self, operation: str, **kwargs) -> Iterator[dict]:
        with _s3_errors():
            yield from self.client.get_paginator(operation).paginate(**kwargs)

    def _info(self, key: str, size: int, etag: str, modified: datetime, ctype=None) -> ObjectInfo:
        return ObjectInfo(key, int(size), etag.strip('"'), modified, ctype)

    def write(self, key, chunks, *, content_type=None, expected_size=None):
        check_key(key)
        content_type = content_type or content_type_for(key)
        reader = _ChunkReader(chunks)
        first = reader.block(S3_PART_SIZE)
        if len(first) < S3_PART_SIZE:
            self._call(
                "put_object", Bucket=self.name, Key=key, Body=first, ContentType=content_type
            )
        else:
            self._multipart(key, content_type, first, reader)
        info = self.head(key)
        if info is None:
            raise BucketError(f"{key}: written but not found afterwards")
        return info

    def _multipart(self, key, content_type, block: bytes, reader: _ChunkReader) -> None:
        upload = self._call(
            "create_multipart_upload", Bucket=self.name, Key=key, ContentType=content_type
        )
        upload_id = upload["UploadId"]
        parts = []
        try:
            number = 1
            while block:
                answer = self._call(
                    "upload_part",
                    Bucket=self.name,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=block,
                )
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                number += 1
                block = b""  # drop the sent part before reading the next one
                block = reader.block(S3_PART_SIZE)
            self._call(
                "complete_multipart_upload",
                Bucket=self.name,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self._call("abort_multipart_upload", Bucket=self.name, Key=key, UploadId=upload_id)
            raise

    def read(self, key, offset=0, length=None):
        check_key(key)
        if length == 0:
            return iter(())
        kwargs = {"Bucket": self.name, "Key": key}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            kwargs["Range"] = f"bytes={offset}-{end}"
        try:
            answer = self._call("get_object", **kwargs)
        except StorageUnavailable as exc:
            if exc.code == "InvalidRange":
                return iter(())
            raise
        return _s3_stream(answer["Body"].iter_chunks(CHUNK_SIZE))

    def head(self, key):
        check_key(key)
        try:
            answer = self._call("head_object", Bucket=self.name, Key=key)
        except ObjectNotFound:
            return None
        return self._info(
            key,
            answer["ContentLength"],
            answer["ETag"],
            answer["LastModified"],
            answer.get("ContentType"),
        )

    def presigned_get(self, key: str, *, filename: str | None, expires: int) -> str:
        """A URL that GETs `key` straight from the bucket for `expires` seconds (signed locally,
        no request), answered with `filename` in its Content-Disposition."""
        params = {"Bucket": self.name, "Key": check_key(key)}
        if filename:
            params["ResponseContentDisposition"] = content_disposition_header(True, filename)
        return self._call("generate_presigned_url", "get_object", Params=params, ExpiresIn=expires)

    def list(self, prefix=""):
        for page in self._pages("list_objects_v2", Bucket=self.name, Prefix=prefix):
            for item in page.get("Contents", []):
                yield self._info(item["Key"], item["Size"], item["ETag"], item["LastModified"])

    def copy_from(self, source, key, dest_key=None):
        if not isinstance(source, S3Bucket):
            raise BucketError("copy between different storage backends is not supported")
        dest_key = check_key(dest_key or key)
        found = source.head(key)
        if found is None:
            raise ObjectNotFound(key)
        copy_source = {"Bucket": source.name, "Key": key}
        # This bucket's credentials sign the copy: the promoter role can read staging and
        # write production; the bytes move inside the S3 service, never through this process.
        if found.size <= S3_SINGLE_COPY_LIMIT:
            self._call(
                "copy_object",
                Bucket=self.name,
                Key=dest_key,
                CopySource=copy_source,
                MetadataDirective="COPY",
            )
        else:
            from boto3.s3.transfer import TransferConfig

            self._call(
                "copy",
                copy_source,
                self.name,
                dest_key,
                Config=TransferConfig(multipart_chunksize=2**30),
            )
        info = self.head(dest_key)
        if info is None:
            raise BucketError(f"{dest_key}: copied but not found afterwards")
        return info

    def delete(self, key):
        self._call("delete_object", Bucket=self.name, Key=check_key(key))

    def leftovers(self, *, before):
        for page in self._pages("list_multipart_uploads", Bucket=self.name):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < before:
                    yield Leftover(
                        key=upload["Key"], started=upload["Initiated"], upload_id=upload["UploadId"]
                    )

    def leftover_remove(self, leftover):
        try:
            self._call(
                "abort_multipart_upload",
                Bucket=self.name,
                Key=leftover.key,
                UploadId=leftover.upload_id,
            )
        except StorageUnavailable as exc:
            if exc.code != "NoSuchUpload":  # gone meanwhile
                raise

    def check(self):
        self._call("list_objects_v2", Bucket=self.name, MaxKeys=1)


NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


@contextlib.contextmanager
def _s3_errors(key: str = "") -> Iterator[None]:
    """Turn botocore's exceptions into this module's: NoSuchKey into ObjectNotFound, the
    others into StorageUnavailable (with S3's error code when it answered one)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in NOT_FOUND_CODES and key:
            raise ObjectNotFound(key) from None
        raise StorageUnavailable(str(exc), code=code) from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(str(exc)) from exc


def _s3_stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """An object's body; a connection lost half-way raises StorageUnavailable."""
    with _s3_errors():
        yield from chunks


# The STORAGES alias of each bucket, and the role whose credentials its OPTIONS carry
# (selfhosted/settings.py fills both entries from STORAGE_BACKEND; docs/processes.md).
STORAGE_ROLES = {"staging": "staging_writer", "production": "production_reader"}


# S3Storage OPTIONS that change where keys live or how they are addressed; the S3 bucket does
# not apply them (docs/configuration.md), so a STORAGES entry that sets one is refused.
UNAPPLIED_S3_OPTIONS = ("location", "custom_domain")
S3_POOL_CONNECTIONS = 64


@functools.cache
def _bucket(alias: str, role: str) -> Bucket:
    """The bucket `settings.STORAGES[alias]` describes (its backend and OPTIONS, as an operator
    may override them), with the credentials of `role` on S3."""
    params = settings.STORAGES[alias]
    backend = import_string(params["BACKEND"])
    options = dict(params.get("OPTIONS", {}))
    if issubclass(backend, FileSystemStorage):
        root = Path(backend(**options).location)
        return FilesystemBucket(root.name, root)
    return _s3_bucket(alias, backend, options, role)


def _s3_bucket(alias: str, backend: type, options: dict, role: str) -> S3Bucket:
    from botocore.config import Config
    from storages.backends.s3 import S3Storage

    if not issubclass(backend, S3Storage):
        raise ImproperlyConfigured(
            f"STORAGES[{alias!r}]: {backend.__module__}.{backend.__qualname__} is not a bucket "
            "backend (django.core.files.storage.FileSystemStorage or "
            "storages.backends.s3.S3Storage)"
        )
    ignored = [name for name in UNAPPLIED_S3_OPTIONS if options.get(name)]
    if ignored:
        # django-storages would prefix keys or rewrite URLs with these, but this module
        # addresses objects with its own client at the bucket's root: refused, not half-applied.
        raise ImproperlyConfigured(
            f"STORAGES[{alias!r}]: OPTIONS {', '.join(ignored)} not supported on S3 (objects "
            "sit at the bucket's root; use a bucket of its own, and "
            "S3_REDIRECT_PUBLIC_BASE_URL for a public domain)"
        )
    if role != STORAGE_ROLES[alias]:
        # Another role signs this bucket's calls: the promoter reads staging and writes
        # production with one key, so that a copy is one server-side call.
        options.update(settings.S3_CREDENTIALS[role])
    # Retries and timeouts are this module's, unless the operator's OPTIONS give a client_config.
    options.setdefault(
        "client_config",
        Config(
            retries={"mode": "standard", "max_attempts": 6},  # 5xx and throttling, with backoff
            connect_timeout=10,
            read_timeout=60,
            # Kept-alive connections per client: a gevent web process serves many requests at
            # once, and with botocore's 10 every burst past ten opened (and then threw away,
            # logging "Connection pool is full") a new TLS connection per request.
            max_pool_connections=S3_POOL_CONNECTIONS,
            signature_version="s3v4",
            # Custom endpoints (MinIO, R2, test servers) want path-style addressing.
            s3={"addressing_style": "path" if options.get("endpoint_url") else "auto"},
        ),
    )
    storage = backend(**options)
    return S3Bucket(storage.bucket_name, storage)


def buckets_check() -> list[str]:
    """Build both buckets with every role's credentials, as a process will: the problems of the
    STORAGES entries (an unknown backend, an unsupported option), one line each. No network."""
    problems = []
    for alias, roles in (
        ("staging", ("staging_writer", "promoter")),
        ("production", ("production_reader", "promoter")),
    ):
        for role in roles:
            try:
                _bucket(alias, role)
            except ImproperlyConfigured as exc:
                problems.append(str(exc))
                break
    return problems


def buckets_prepare() -> None:
    """Create the filesystem buckets' directories (`make run` and `migrate` call this; on S3
    the buckets are created by the operator, never by us)."""
    for alias in STORAGE_ROLES:
        _bucket(alias, STORAGE_ROLES[alias]).prepare()


def staging(*, role: str = "staging_writer") -> Bucket:
    """The staging bucket, with the credentials of `role` (staging_writer or promoter)."""
    return _bucket("staging", role)


def production(*, role: str = "production_reader") -> Bucket:
    """The production bucket, with the credentials of `role` (production_reader or promoter)."""
    return _bucket("production", role)


def reset() -> None:
    """Forget the buckets built so far: the next call builds them from the settings again."""
    _bucket.cache_clear()


@receiver(setting_changed)
def _setting_changed(*, setting: str, **kwargs) -> None:
    # Like Django's own storages: a changed STORAGES (tests' override_settings) takes effect.
    if setting in ("STORAGES", "S3_CREDENTIALS"):
        reset()


def _size(count: int) -> str:
    for unit, scale, digits in (("GiB", 1024**3, 2), ("MiB", 1024**2, 1), ("KiB", 1024, 1)):
        if count >= scale:
            return f"{count / scale:.{digits}f} {unit}"
    return f"{count} bytes"


def hashes_of(chunks: Iterable[bytes]) -> dict[str, str | int]:
    """sha256, sha512, md5 and size of a stream (used to verify copies in tests and tools)."""
    digests = {name: hashlib.new(name) for name in ("sha256", "sha512", "md5")}
    size = 0
    for chunk in chunks:
        size += len(chunk)
        for digest in digests.values():
            digest.update(chunk)
    return {"size": size, **{name: digest.hexdigest() for name, digest in digests.items()}}
