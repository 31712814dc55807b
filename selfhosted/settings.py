"""One settings module, read from the environment (docs/configuration.md).

Every name here is part of the operator contract: the README's configuration table lists the
same names. A wrong value stops start-up with one line that names the variable.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

import environ

from selfhosted.redaction import text_redact

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


class ConfigError(Exception):
    """A configuration value that cannot be used; the message starts with the variable."""


def _fail(message: str) -> None:
    # One clear line, no traceback: an operator reads this in a container log. Values are
    # quoted to say what is wrong, but a password in a URL never reaches the log
    # (docs/configuration.md).
    message = text_redact(message)
    sys.stderr.write(f"configuration error: {message}\n")
    raise SystemExit(2)


def _read(name: str, cast, default):
    try:
        return cast(name, default=default)
    except Exception as exc:  # django-environ raises several types for bad values
        _fail(f"{name}: cannot parse {os.environ.get(name)!r} ({exc})")


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    _fail(f"{name}: {raw!r} is not a boolean (use true or false)")


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        _fail(f"{name}: unknown value {value!r}; expected one of {', '.join(choices)}")
    return value


def _list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _url(name: str, value: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """`value` must be an absolute URL with one of `schemes` and a host (and a numeric port)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        _fail(f"{name}: {value!r} is not a valid URL ({exc})")
    if parts.scheme.lower() not in schemes or not parts.hostname:
        _fail(f"{name}: {value!r} is not a URL like {schemes[0]}://host[:port]")
    return value


def _directory(name: str, path: Path) -> Path:
    """Create `path` when it is missing (as DATA_DIR is); it must be a writable directory."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        _fail(f"{name}: {path} exists and is not a directory")
    except OSError as exc:
        _fail(f"{name}: cannot create the directory {path} ({exc.strerror})")
    if not os.access(path, os.W_OK | os.X_OK):
        _fail(f"{name}: the directory {path} is not writable")
    return path


def _creatable(name: str, path: Path) -> None:
    """`path` is a writable directory, or can be created as one (nothing is created here: a
    container image's build must not leave root-owned directories in its data volume)."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        _fail(f"{name}: {existing} exists and is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        verb = "is not writable" if existing == path else f"cannot be created in {existing}"
        _fail(f"{name}: the directory {path} {verb}")


def _sqlite_file(name: str, path: Path) -> None:
    """A SQLite file (database or broker): its directory is created; SQLite also writes its
    `-wal` and `-shm` files there, so the directory and the file must be writable."""
    _directory(name, path.parent)
    if path.exists() and not (path.is_file() and os.access(path, os.R_OK | os.W_OK)):
        _fail(f"{name}: {path} is not a readable and writable file")


def _broker_transport_known(scheme: str) -> bool:
    from kombu.transport import TRANSPORT_ALIASES

    return scheme.split("+")[0] in TRANSPORT_ALIASES


def _from_data_dir(name: str) -> str:
    """The variable to blame for a path: `name` when it is set, else DATA_DIR (its default)."""
    return name if os.environ.get(name) else "DATA_DIR"


# --- Paths and secrets ------------------------------------------------------------------------

DATA_DIR = Path(os.environ.get("DATA_DIR") or BASE_DIR / "var").resolve()


def _secret_key() -> str:
    """SECRET_KEY from the environment, else generated once and kept in DATA_DIR."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = DATA_DIR / "secret_key"
    _directory("DATA_DIR", DATA_DIR)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    try:
        key = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key
    except FileExistsError:  # another process won the race
        return path.read_text().strip()
    except OSError as exc:
        _fail(f"SECRET_KEY: unset and cannot be kept in DATA_DIR={DATA_DIR} ({exc})")


SECRET_KEY = _secret_key()
DEBUG = _bool("DEBUG", False)
ALLOWED_HOSTS = _list("ALLOWED_HOSTS", "localhost,127.0.0.1")
PORT = _read("PORT", env.int, 8000)
PUBLIC_BASE_URL = _url(
    "PUBLIC_BASE_URL", (os.environ.get("PUBLIC_BASE_URL") or f"http://localhost:{PORT}").rstrip("/")
)
CSRF_TRUSTED_ORIGINS = [_url("CSRF_TRUSTED_ORIGINS", o) for o in _list("CSRF_TRUSTED_ORIGINS")]

# --- Applications -----------------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # Before rest_framework.authtoken: of two commands with one name Django runs the first
    # app's, and `drf_create_token` must print the key, not the digest stored (docs/api.md).
    "releases",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    # login throttling: lock out after repeated failures per user name and address
    "axes",
    "cdn",
    "downloads",
    "adoption",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # FEED_HOSTS / DOWNLOAD_HOSTS: the feed / download links at `/` of those hosts
    # (docs/configuration.md).
    "selfhosted.hosts.HostRoutingMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # who acts, for the audit records of logins, tokens and user changes
    "releases.middleware.AuditActorMiddleware",
    # last: answers a locked-out login with 429 (django-axes)
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out user name and address first
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "selfhosted.urls"
WSGI_APPLICATION = "selfhosted.wsgi.application"
APPEND_SLASH = False  # the feed and download paths are exact; docs/download-links.md defines its
# own slash rule

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Overrides of the admin's own templates (the "My API token" link in its user tools).
        "DIRS": [BASE_DIR / "selfhosted" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# --- Database ---------------------------------------------------------------------------------

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
try:
    _db = environ.Env.db_url_config(DATABASE_URL)
except Exception as exc:
    _fail(f"DATABASE_URL: cannot parse {DATABASE_URL!r} ({exc})")
if _db.get("ENGINE") not in ("django.db.backends.sqlite3", "django.db.backends.postgresql"):
    _fail(f"DATABASE_URL: unsupported scheme in {DATABASE_URL!r}; use sqlite:/// or postgres://")
_SQLITE_TRANSACTION_MODES = ("IMMEDIATE", "DEFERRED", "EXCLUSIVE")
if _db["ENGINE"].endswith("sqlite3"):
    if _db["NAME"] not in ("", ":memory:"):
        _sqlite_file(_from_data_dir("DATABASE_URL"), Path(_db["NAME"]).resolve())
    # Options in the URL's query string (`?timeout=60`) win over these defaults.
    _db["OPTIONS"] = {
        **{
            # WAL: readers never block the writer nor the writer them (web, staging and
            # promotion processes share the file in `make run`).
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            # A writer waits this long for another one's lock instead of failing at once.
            "timeout": 20,
            # A transaction takes the write lock when it starts. SQLite's default (DEFERRED)
            # takes it at the first write, and when another process committed in between, that
            # upgrade fails at once with "database is locked", without waiting the timeout.
            "transaction_mode": "IMMEDIATE",
        },
        **_db.get("OPTIONS", {}),
    }
    try:
        _db["OPTIONS"]["timeout"] = float(_db["OPTIONS"]["timeout"])
    except ValueError:
        _fail(f"DATABASE_URL: timeout={_db['OPTIONS']['timeout']!r} is not a number of seconds")
    if str(_db["OPTIONS"]["transaction_mode"]).upper() not in _SQLITE_TRANSACTION_MODES:
        _fail("DATABASE_URL: transaction_mode must be IMMEDIATE, DEFERRED or EXCLUSIVE")
else:
    # A server that does not answer (a black-holed address) fails a connection within this
    # many seconds instead of TCP's minutes; `?connect_timeout=` in the URL wins.
    _db["OPTIONS"] = {"connect_timeout": 5, **_db.get("OPTIONS", {})}
_db["CONN_MAX_AGE"] = _read("DATABASE_CONN_MAX_AGE", env.int, 60)
_db["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": _read("CACHE_URL", env.cache_url, "locmemcache://selfhosted")}
if os.environ.get("CACHE_URL", "").lower().startswith(("redis://", "rediss://")):
    _url("CACHE_URL", os.environ["CACHE_URL"], ("redis", "rediss"))

# --- Buckets (docs/processes.md, docs/bucket-layout.md) ----------------------------------------

STORAGE_BACKEND = _choice("STORAGE_BACKEND", "filesystem", ("filesystem", "s3"))
STAGING_BUCKET = os.environ.get("STAGING_BUCKET", "desktop-app-distributables-staging").strip()
PRODUCTION_BUCKET = os.environ.get("PRODUCTION_BUCKET", "desktop-app-distributables").strip()
for _name, _value in (("STAGING_BUCKET", STAGING_BUCKET), ("PRODUCTION_BUCKET", PRODUCTION_BUCKET)):
    if not _value:
        _fail(f"{_name}: must name a bucket (it is empty)")
    if "/" in _value or _value in (".", ".."):
        _fail(f"{_name}: {_value!r} is not a bucket name")
if STAGING_BUCKET == PRODUCTION_BUCKET:
    _fail("PRODUCTION_BUCKET: must differ from STAGING_BUCKET")

AWS_S3_ENDPOINT_URL = os.environ.get("AWS_S3_ENDPOINT_URL") or None
AWS_S3_REGION_NAME = os.environ.get("AWS_S3_REGION_NAME") or None
# Credentials per role (docs/processes.md). Each role falls back to
# AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
# and then to boto3's own chain (instance profile, ~/.aws), so a simple install needs one pair.
S3_ROLES = ("staging_writer", "production_reader", "promoter")
S3_CREDENTIALS: dict[str, dict[str, str | None]] = {}
for _role in S3_ROLES:
    _prefix = _role.upper()
    S3_CREDENTIALS[_role] = {
        "access_key": os.environ.get(f"{_prefix}_AWS_ACCESS_KEY_ID")
        or os.environ.get("AWS_ACCESS_KEY_ID"),
        "secret_key": os.environ.get(f"{_prefix}_AWS_SECRET_ACCESS_KEY")
        or os.environ.get("AWS_SECRET_ACCESS_KEY"),
    }
BUCKETS_DIR = DATA_DIR / "buckets"
if STORAGE_BACKEND == "filesystem":
    _creatable("DATA_DIR", BUCKETS_DIR)  # the buckets create their directories on first use
if STORAGE_BACKEND == "s3" and AWS_S3_ENDPOINT_URL:
    _url("AWS_S3_ENDPOINT_URL", AWS_S3_ENDPOINT_URL)


def _bucket_storage(bucket: str, role: str) -> dict:
    if STORAGE_BACKEND == "filesystem":
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(BUCKETS_DIR / bucket), "base_url": None},
        }
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": AWS_S3_ENDPOINT_URL,
            "region_name": AWS_S3_REGION_NAME,
            **S3_CREDENTIALS[role],
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": False,
        },
    }


STATIC_URL = "/static/"
# Set in the container, where collectstatic runs at build time.
STATIC_ROOT = os.environ.get("STATIC_ROOT") or None
if STATIC_ROOT and Path(STATIC_ROOT).exists() and not Path(STATIC_ROOT).is_dir():
    _fail(f"STATIC_ROOT: {STATIC_ROOT} exists and is not a directory")
# Serve the admin's assets straight from the installed apps when collectstatic has not run
# (`make run`); the container runs collectstatic at build time.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # The two buckets: releases.integrations.buckets builds them from these entries alone
    # (backend and OPTIONS), so an override of STORAGES is what the buckets use. Each carries
    # its bucket's usual role's credentials; the promoter's come from S3_CREDENTIALS.
    "staging": _bucket_storage(STAGING_BUCKET, "staging_writer"),
    "production": _bucket_storage(PRODUCTION_BUCKET, "production_reader"),
}

# --- Celery (docs/processes.md) ----------------------------------------------------------------

CELERY_BROKER_URL = (
    os.environ.get("CELERY_BROKER_URL") or f"sqla+sqlite:///{DATA_DIR / 'broker.sqlite3'}"
)
_broker_scheme = CELERY_BROKER_URL.split("://", 1)[0].lower()
if "://" not in CELERY_BROKER_URL or not _broker_transport_known(_broker_scheme):
    _fail(f"CELERY_BROKER_URL: {CELERY_BROKER_URL!r} is not a broker URL (redis://host:6379/0)")
_broker_file = CELERY_BROKER_URL.split("://", 1)[-1].removeprefix("/")
if _broker_scheme == "sqla+sqlite" and _broker_file not in ("", ":memory:"):
    # The embedded broker: a SQLite file, whose directory is created like the database's.
    _sqlite_file(_from_data_dir("CELERY_BROKER_URL"), Path(_broker_file).resolve())
elif _broker_scheme.startswith("redis"):
    _url("CELERY_BROKER_URL", CELERY_BROKER_URL, ("redis", "rediss"))
CELERY_TASK_ALWAYS_EAGER = _bool("CELERY_TASK_ALWAYS_EAGER", False)
# Longer than the longest task (a multi-GB staging run), so Redis does not re-deliver a task
# that is still running; a dead worker's task comes back after this many seconds.
CELERY_VISIBILITY_TIMEOUT = _read("CELERY_VISIBILITY_TIMEOUT", env.int, 4 * 3600)
RECONCILE_INTERVAL_SECONDS = _read("RECONCILE_INTERVAL_SECONDS", env.int, 600)
# How often beat verifies the audit trail's hash chain (the admin can also ask at any time).
AUDIT_CHECK_INTERVAL_SECONDS = _read("AUDIT_CHECK_INTERVAL_SECONDS", env.int, 3600)

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT failures for the same user name
# from the same address, that pair is locked out for LOGIN_LOCKOUT_MINUTES.
AXES_FAILURE_LIMIT = _read("LOGIN_FAILURE_LIMIT", env.int, 5)
AXES_COOLOFF_TIME = _read("LOGIN_LOCKOUT_MINUTES", env.int, 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "cdn.clientip.client_ip"  # honours TRUSTED_CLIENT_IP_HEADER
AXES_VERBOSE = False
# Retries of a task after a transient error: exponential backoff from this many seconds
# (capped at 10 minutes, with jitter), then the task gives up and the failure is recorded.
TASK_MAX_RETRIES = _read("TASK_MAX_RETRIES", env.int, 8)
TASK_RETRY_BACKOFF_SECONDS = _read("TASK_RETRY_BACKOFF_SECONDS", env.int, 5)
if TASK_MAX_RETRIES < 0 or TASK_RETRY_BACKOFF_SECONDS < 1:
    _fail("TASK_MAX_RETRIES / TASK_RETRY_BACKOFF_SECONDS: must be >= 0 / >= 1")

# --- ToDesktop (docs/webhooks.md, docs/staging.md) ---------------------------------------------

WEBHOOK_HMAC_KEY = os.environ.get("WEBHOOK_HMAC_KEY") or ""
TODESKTOP_APP_ID = os.environ.get("TODESKTOP_APP_ID") or ""
TODESKTOP_DOWNLOAD_BASE_URL = (
    os.environ.get("TODESKTOP_DOWNLOAD_BASE_URL") or "https://download.todesktop.com"
).rstrip("/")
_url("TODESKTOP_DOWNLOAD_BASE_URL", TODESKTOP_DOWNLOAD_BASE_URL)
# Where a download may be redirected besides the base URL's own origin (README, "Downloads
# from ToDesktop"): host names (https on port 443, public addresses only; `*.example.com` for
# subdomains), or full origins (`http://10.0.0.5:9000`) trusted like the base URL.
TODESKTOP_REDIRECT_HOSTS = _list("TODESKTOP_REDIRECT_HOSTS")


def _redirect_entry_check(entry: str) -> None:
    if "://" in entry:
        parts = urlsplit(_url("TODESKTOP_REDIRECT_HOSTS", entry))
        if parts.path.strip("/") or parts.query or parts.username:
            _fail(f"TODESKTOP_REDIRECT_HOSTS: {entry!r} must be an origin (no path or user)")
    elif not re.fullmatch(r"(\*\.)?[A-Za-z0-9.-]+", entry) or entry.strip(".*") == "":
        _fail(f"TODESKTOP_REDIRECT_HOSTS: {entry!r} is not a host name")


for _entry in TODESKTOP_REDIRECT_HOSTS:
    _redirect_entry_check(_entry)
WEBHOOK_MAX_BODY_BYTES = _read("WEBHOOK_MAX_BODY_BYTES", env.int, 1024 * 1024)
STAGING_CONCURRENCY = _read("STAGING_CONCURRENCY", env.int, 4)
HTTP_TIMEOUT_SECONDS = _read("HTTP_TIMEOUT_SECONDS", env.float, 30.0)
HTTP_MAX_RETRIES = _read("HTTP_MAX_RETRIES", env.int, 5)
# First wait between retries towards ToDesktop; doubles per retry (with jitter), capped at 30 s.
HTTP_RETRY_BACKOFF_SECONDS = _read("HTTP_RETRY_BACKOFF_SECONDS", env.float, 1.0)
# A staging worker renews its claim on a build every quarter of this; a build whose claim is
# older than this is taken over by a redelivered task (its worker died).
STAGING_LEASE_SECONDS = _read("STAGING_LEASE_SECONDS", env.int, 120)
if STAGING_CONCURRENCY < 1 or STAGING_LEASE_SECONDS < 1:
    _fail("STAGING_CONCURRENCY and STAGING_LEASE_SECONDS: must be 1 or more")
# Retention (releases.services.retention): staged files of rejected, failed and closed builds,
# and of live builds superseded by STAGING_KEEP_LIVE_BUILDS newer live builds, are removed once
# that has been so for this many days. Beat sweeps daily; `manage.py prune_staging` on demand.
STAGING_RETENTION_DAYS = _read("STAGING_RETENTION_DAYS", env.int, 30)
STAGING_KEEP_LIVE_BUILDS = _read("STAGING_KEEP_LIVE_BUILDS", env.int, 3)
STAGING_PRUNE_INTERVAL_SECONDS = _read("STAGING_PRUNE_INTERVAL_SECONDS", env.int, 24 * 3600)
if STAGING_RETENTION_DAYS < 0 or STAGING_KEEP_LIVE_BUILDS < 0:
    _fail("STAGING_RETENTION_DAYS and STAGING_KEEP_LIVE_BUILDS: must be 0 or more")
if STAGING_PRUNE_INTERVAL_SECONDS < 60:
    _fail("STAGING_PRUNE_INTERVAL_SECONDS: must be 60 or more")
# Size caps, enforced while streaming (README, "Limits"). A blockmap of a 4 GiB artifact is
# about 20 MB of JSON before gzip (one ~35-byte entry per block of at least 8 KiB).
MAX_ARTIFACT_BYTES = _read("MAX_ARTIFACT_BYTES", env.int, 4 * 1024**3)
MAX_BLOCKMAP_BYTES = _read("MAX_BLOCKMAP_BYTES", env.int, 64 * 1024**2)
MAX_MANIFEST_BYTES = _read("MAX_MANIFEST_BYTES", env.int, 1024**2)
# Free space a filesystem bucket write must leave on its disk (which also holds the database).
MIN_FREE_DISK_BYTES = _read("MIN_FREE_DISK_BYTES", env.int, 1024**3)
for _name in ("MAX_ARTIFACT_BYTES", "MAX_BLOCKMAP_BYTES", "MAX_MANIFEST_BYTES"):
    if globals()[_name] < 1:
        _fail(f"{_name}: must be 1 or more")
if MIN_FREE_DISK_BYTES < 0:
    _fail("MIN_FREE_DISK_BYTES: must be 0 or more")
# Django refuses request bodies above this before our view runs; keep it above the webhook limit
# so the webhook answers its own 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(WEBHOOK_MAX_BODY_BYTES * 2, 2_621_440)

# --- Review (docs/review.md) -------------------------------------------------------------------

GITHUB_OWNER = os.environ.get("GITHUB_OWNER") or ""
GITHUB_REPO = os.environ.get("GITHUB_REPO") or ""
GITHUB_TOKEN = os.environ.get("GITHUB_TOKEN") or ""
GITHUB_APP_ID = os.environ.get("GITHUB_APP_ID") or ""
GITHUB_APP_PRIVATE_KEY = (os.environ.get("GITHUB_APP_PRIVATE_KEY") or "").replace("\\n", "\n")
GITHUB_APP_INSTALLATION_ID = _read("GITHUB_APP_INSTALLATION_ID", env.int, 0)
GITHUB_API_URL = _url(
    "GITHUB_API_URL", (os.environ.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
)
GITHUB_WEBHOOK_SECRET = os.environ.get("GITHUB_WEBHOOK_SECRET") or ""
_github_configured = bool(GITHUB_OWNER and GITHUB_REPO and (GITHUB_TOKEN or GITHUB_APP_ID))
REVIEW_BACKEND = _choice(
    "REVIEW_BACKEND", "github" if _github_configured else "admin", ("github", "admin")
)
if REVIEW_BACKEND == "github" and not _github_configured:
    _fail(
        "REVIEW_BACKEND: github needs GITHUB_OWNER, GITHUB_REPO and GITHUB_TOKEN "
        "(or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_INSTALLATION_ID)"
    )
REQUIRED_APPROVALS = _read("REQUIRED_APPROVALS", env.int, 1)
if REQUIRED_APPROVALS < 1:
    _fail("REQUIRED_APPROVALS: must be 1 or more")
# GitHub: a merge whose head is not the commit the last approving review was given on is
# "merged with unreviewed commits" and is not promoted (false: promote it anyway, as before).
REQUIRE_REVIEWED_HEAD = _bool("REQUIRE_REVIEWED_HEAD", True)
# GitHub API calls (releases.integrations.github): retries of 5xx and rate limits, the
# longest wait for a rate limit to lift, and the spacing of writes GitHub's best practices ask for.
GITHUB_MAX_RETRIES = _read("GITHUB_MAX_RETRIES", env.int, 5)
GITHUB_MAX_RATE_LIMIT_WAIT_SECONDS = _read("GITHUB_MAX_RATE_LIMIT_WAIT_SECONDS", env.float, 300.0)
GITHUB_SECONDS_BETWEEN_WRITES = _read("GITHUB_SECONDS_BETWEEN_WRITES", env.float, 1.0)
if GITHUB_MAX_RETRIES < 0 or GITHUB_SECONDS_BETWEEN_WRITES < 0:
    _fail("GITHUB_MAX_RETRIES and GITHUB_SECONDS_BETWEEN_WRITES: must be 0 or more")

# --- Feed and downloads (docs/feed.md, docs/download-links.md) ---------------------------------

FEED_HOSTS = [host.lower() for host in _list("FEED_HOSTS")]
DOWNLOAD_HOSTS = [host.lower() for host in _list("DOWNLOAD_HOSTS")]
TRUSTED_CLIENT_IP_HEADER = (os.environ.get("TRUSTED_CLIENT_IP_HEADER") or "").strip()
TRUSTED_PROXY_COUNT = _read("TRUSTED_PROXY_COUNT", env.int, 1)
FEED_MANIFEST_CACHE_CONTROL = os.environ.get("FEED_MANIFEST_CACHE_CONTROL") or "public, max-age=60"
FEED_IMMUTABLE_CACHE_CONTROL = (
    os.environ.get("FEED_IMMUTABLE_CACHE_CONTROL") or "public, max-age=31536000, immutable"
)
FEED_METADATA_TTL_SECONDS = _read("FEED_METADATA_TTL_SECONDS", env.int, 30)
# How often a web process compares the ETags of production's desktop-*.json with what it loaded
# (cdn/metadata.py): how stale it may be after another process promoted. 0: every request.
FEED_METADATA_CHECK_SECONDS = _read("FEED_METADATA_CHECK_SECONDS", env.float, 1.0)
if FEED_METADATA_CHECK_SECONDS < 0:
    _fail("FEED_METADATA_CHECK_SECONDS: must be 0 or more")
# Big objects on S3: answer a full GET with a redirect to the bucket (a presigned URL, or a
# public base such as a CDN or custom domain in front of it) instead of streaming the bytes.
S3_REDIRECT = _choice("S3_REDIRECT", "off", ("off", "presigned", "public"))
S3_REDIRECT_EXPIRES_SECONDS = _read("S3_REDIRECT_EXPIRES_SECONDS", env.int, 300)
S3_REDIRECT_MIN_BYTES = _read("S3_REDIRECT_MIN_BYTES", env.int, 1024 * 1024)
S3_REDIRECT_PUBLIC_BASE_URL = (os.environ.get("S3_REDIRECT_PUBLIC_BASE_URL") or "").strip()
if S3_REDIRECT_PUBLIC_BASE_URL:
    _url("S3_REDIRECT_PUBLIC_BASE_URL", S3_REDIRECT_PUBLIC_BASE_URL)
if S3_REDIRECT == "public" and not S3_REDIRECT_PUBLIC_BASE_URL:
    _fail("S3_REDIRECT_PUBLIC_BASE_URL: required when S3_REDIRECT=public")
if not 1 <= S3_REDIRECT_EXPIRES_SECONDS <= 7 * 24 * 3600:
    _fail("S3_REDIRECT_EXPIRES_SECONDS: must be between 1 and 604800 (S3's limit)")
if S3_REDIRECT_MIN_BYTES < 0:
    _fail("S3_REDIRECT_MIN_BYTES: must be 0 or more")
# Adoption counting (README: Adoption): in each web process's memory, flushed in batches.
ADOPTION_COUNTING = _bool("ADOPTION_COUNTING", True)
ADOPTION_FLUSH_SECONDS = _read("ADOPTION_FLUSH_SECONDS", env.float, 10.0)
ADOPTION_SECRET_ROTATION_DAYS = _read("ADOPTION_SECRET_ROTATION_DAYS", env.int, 30)
if ADOPTION_FLUSH_SECONDS <= 0 or ADOPTION_SECRET_ROTATION_DAYS < 1:
    _fail("ADOPTION_FLUSH_SECONDS must be > 0 and ADOPTION_SECRET_ROTATION_DAYS >= 1")


# --- Notifications and CDN purge (README: Notifications, CDN in front of the feed) ------------


def _optional_url(name: str) -> str:
    value = (os.environ.get(name) or "").strip()
    return _url(name, value) if value else ""


def _needs(name: str, value: str, because: str) -> None:
    if not value:
        _fail(f"{name}: must be set {because}")


# Read only by the `notify` worker (releases.services.notifications); the other processes just
# queue the audit events that need a person.
NOTIFY_WEBHOOK_URL = _optional_url("NOTIFY_WEBHOOK_URL")
NOTIFY_WEBHOOK_SECRET = os.environ.get("NOTIFY_WEBHOOK_SECRET") or ""
if NOTIFY_WEBHOOK_URL:
    _needs("NOTIFY_WEBHOOK_SECRET", NOTIFY_WEBHOOK_SECRET, "with NOTIFY_WEBHOOK_URL (signing)")
NOTIFY_SLACK_WEBHOOK_URL = _optional_url("NOTIFY_SLACK_WEBHOOK_URL")
NOTIFY_EMAIL_GROUP = (os.environ.get("NOTIFY_EMAIL_GROUP") or "").strip()
# EMAIL_URL as django-environ reads it: smtp://, smtp+tls://, smtp+ssl://, consolemail://…
_email = _read("EMAIL_URL", env.email_url, "smtp://localhost:25")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
EMAIL_FILE_PATH = _email.get("EMAIL_FILE_PATH") or None  # filemail:///path
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL") or "releases@localhost"
EMAIL_TIMEOUT = 30

# Read by the promotion worker, which purges after every change to production.
CDN_PURGE_BACKEND = _choice("CDN_PURGE_BACKEND", "off", ("off", "cloudflare", "cloudfront", "http"))
CDN_PUBLIC_BASE_URLS = [url.rstrip("/") for url in _list("CDN_PUBLIC_BASE_URLS")]
for _base in CDN_PUBLIC_BASE_URLS:
    if "?" in _url("CDN_PUBLIC_BASE_URLS", _base) or "#" in _base:
        _fail(f"CDN_PUBLIC_BASE_URLS: {_base!r} is a base URL: no query or fragment")
CLOUDFLARE_API_BASE_URL = (
    _optional_url("CLOUDFLARE_API_BASE_URL") or "https://api.cloudflare.com/client/v4"
).rstrip("/")
CLOUDFLARE_ZONE_ID = (os.environ.get("CLOUDFLARE_ZONE_ID") or "").strip()
CLOUDFLARE_API_TOKEN = os.environ.get("CLOUDFLARE_API_TOKEN") or ""
CLOUDFRONT_DISTRIBUTION_ID = (os.environ.get("CLOUDFRONT_DISTRIBUTION_ID") or "").strip()
CLOUDFRONT_ENDPOINT_URL = _optional_url("CLOUDFRONT_ENDPOINT_URL") or None
CLOUDFRONT_CREDENTIALS = {
    "access_key": os.environ.get("CLOUDFRONT_AWS_ACCESS_KEY_ID")
    or os.environ.get("AWS_ACCESS_KEY_ID"),
    "secret_key": os.environ.get("CLOUDFRONT_AWS_SECRET_ACCESS_KEY")
    or os.environ.get("AWS_SECRET_ACCESS_KEY"),
}
CDN_PURGE_HTTP_URL = _optional_url("CDN_PURGE_HTTP_URL")
CDN_PURGE_HTTP_METHOD = (os.environ.get("CDN_PURGE_HTTP_METHOD") or "POST").strip().upper()
CDN_PURGE_HTTP_AUTHORIZATION = os.environ.get("CDN_PURGE_HTTP_AUTHORIZATION") or ""
if not re.match(r"^[A-Z]+$", CDN_PURGE_HTTP_METHOD):
    _fail(f"CDN_PURGE_HTTP_METHOD: {CDN_PURGE_HTTP_METHOD!r} is not an HTTP method")
if CDN_PURGE_BACKEND != "off":
    _needs("CDN_PUBLIC_BASE_URLS", ",".join(CDN_PUBLIC_BASE_URLS), "to purge their URLs")
if CDN_PURGE_BACKEND == "cloudflare":
    _needs("CLOUDFLARE_ZONE_ID", CLOUDFLARE_ZONE_ID, "with CDN_PURGE_BACKEND=cloudflare")
    _needs("CLOUDFLARE_API_TOKEN", CLOUDFLARE_API_TOKEN, "with CDN_PURGE_BACKEND=cloudflare")
if CDN_PURGE_BACKEND == "cloudfront":
    _needs(
        "CLOUDFRONT_DISTRIBUTION_ID",
        CLOUDFRONT_DISTRIBUTION_ID,
        "with CDN_PURGE_BACKEND=cloudfront",
    )
if CDN_PURGE_BACKEND == "http":
    _needs("CDN_PURGE_HTTP_URL", CDN_PURGE_HTTP_URL, "with CDN_PURGE_BACKEND=http")

# --- Security, i18n, logging -------------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if _bool("TRUST_X_FORWARDED_PROTO", False) else None
)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Behind TLS (the container sets both): cookies only over HTTPS, and HSTS. Off by default so
# that `make run` on http://localhost keeps its admin login.
SECURE_COOKIES = _bool("SECURE_COOKIES", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_HSTS_SECONDS = _read("SECURE_HSTS_SECONDS", env.int, 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", False)
if SECURE_HSTS_SECONDS < 0:
    _fail("SECURE_HSTS_SECONDS: must be 0 or more")
SILENCED_SYSTEM_CHECKS = [
    # HTTP → HTTPS redirects belong to the TLS proxy in front (Django cannot tell http from
    # https there unless TRUST_X_FORWARDED_PROTO), and HSTS keeps browsers on https after that.
    "security.W008",
    # HSTS for every subdomain and the browsers' preload list bind the operator's whole domain
    # for months: they are the operator's decision (SECURE_HSTS_INCLUDE_SUBDOMAINS/_PRELOAD).
    "security.W005",
    "security.W021",
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Times in the admin as ISO 8601 to the second with the offset (selfhosted/formats/en/).
FORMAT_MODULE_PATH = ["selfhosted.formats"]
USE_I18N = True
USE_TZ = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # `Authorization: Token <key>`, looked up by its digest (README: Security model).
        "releases.authentication.DigestTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Desktop releases API",
    "DESCRIPTION": "Builds, their files, release requests and the audit trail (read-only), "
    "plus release-manager actions.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

METRICS_TOKEN = os.environ.get("METRICS_TOKEN") or ""
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            # Masks credentials in URLs, whichever library logged them (README, "Security").
            "()": "selfhosted.redaction.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
