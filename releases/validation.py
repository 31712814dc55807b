"""The ToDesktop release webhook body: parsing and validation (docs/webhooks.md, rules of
docs/feed.md).

Only shapes are checked here. Known fields must have the right JSON type; unknown fields are
kept (ToDesktop adds fields over time). `null` is accepted for the optional fields, never for
the ids. Ids must be safe as bucket prefixes and path segments: `[A-Za-z0-9_-]{1,64}`.
The stored payload is the parsed JSON as sent, not a re-serialised model.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

# An app or build id, defined once: the webhook, desktop-builds.json (releases.control_files),
# the admin's adoption page and the ids in staged file names (ownership) all use it.
ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Webhook bodies nest a few levels (GitHub's about ten). A limit far below Python's recursion
# limit means nothing later (validation, json.dumps into the database) can hit a RecursionError.
MAX_JSON_DEPTH = 64
RULE_KINDS = ("build", "buildByIp", "buildByPlatform", "appByIp")
# desktop-releases.json may also hold staged rollouts (README: Staged rollouts); ToDesktop's
# webhook never sends them, so its body keeps the four kinds above.
DESIRED_RULE_KINDS = (*RULE_KINDS, "buildByPercentage")
MAX_SCHEDULE_STEPS = 100
MAX_ERRORS = 10


class PayloadError(Exception):
    """A body that is not an acceptable release webhook; `errors` are per-field details."""

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


def _identifier(value: str) -> str:
    if not value:
        raise PydanticCustomError("id_empty", "must not be empty")
    if not ID_RE.fullmatch(value):
        raise PydanticCustomError("id_pattern", "must be 1-64 characters of A-Z a-z 0-9 _ -")
    return value


def _moment(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("timestamp", "must be an ISO-8601 date and time")


def _timestamp(value: str) -> str:
    _moment(value)
    return value


def _ip(value: str) -> str:
    # Single addresses only: the feed compares the client address with each entry (docs/feed.md).
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise PydanticCustomError("ip", "must be an IPv4 or IPv6 address")
    return value


def _url(value: str) -> str:
    if not re.match(r"https?://[^\s/]+", value):
        raise PydanticCustomError("url", "must be an http(s) URL")
    return value


def _aware_timestamp(value: str) -> str:
    if _moment(value).tzinfo is None:
        raise PydanticCustomError("timestamp_zone", "must give its time zone (e.g. Z or +02:00)")
    return value


def _percentage(value: float) -> float:
    if not 0 <= value <= 100:  # also refuses NaN
        raise PydanticCustomError("percentage", "must be a number from 0 to 100")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
Timestamp = Annotated[str, AfterValidator(_timestamp)]
IpAddress = Annotated[str, AfterValidator(_ip)]
HttpUrl = Annotated[str, AfterValidator(_url)]
Platform = Literal["windows", "mac", "linux"]


class _Shape(BaseModel):
    # strict: "1" is not a number, 0 is not false; extra: unknown fields are kept, not refused.
    model_config = ConfigDict(strict=True, extra="allow")


class BuildRule(_Shape):
    rule: Literal["build"]
    buildId: Identifier


class BuildByIpRule(_Shape):
    rule: Literal["buildByIp"]
    buildId: Identifier
    ipList: list[IpAddress]


class BuildByPlatformRule(_Shape):
    rule: Literal["buildByPlatform"]
    buildId: Identifier
    platforms: list[Platform]


class AppByIpRule(_Shape):
    rule: Literal["appByIp"]
    feedUrl: HttpUrl
    ipList: list[IpAddress]


Rule = Annotated[
    BuildRule | BuildByIpRule | BuildByPlatformRule | AppByIpRule, Field(discriminator="rule")
]
Percentage = Annotated[float, AfterValidator(_percentage)]


class ScheduleStep(_Shape):
    at: Annotated[str, AfterValidator(_aware_timestamp)]
    percentage: Percentage


def _schedule(steps: list[ScheduleStep]) -> list[ScheduleStep]:
    if len(steps) > MAX_SCHEDULE_STEPS:
        raise PydanticCustomError("schedule_long", f"has more than {MAX_SCHEDULE_STEPS} steps")
    times = [datetime.fromisoformat(step.at) for step in steps]
    if any(later <= earlier for earlier, later in zip(times, times[1:], strict=False)):
        raise PydanticCustomError("schedule_order", "steps must be in strictly increasing time")
    return steps


class BuildByPercentageRule(_Shape):
    rule: Literal["buildByPercentage"]
    buildId: Identifier
    percentage: Percentage
    platforms: Annotated[list[Platform], Field(min_length=1)] | None = None
    schedule: Annotated[list[ScheduleStep], AfterValidator(_schedule)] | None = None


DesiredRule = Annotated[
    BuildRule | BuildByIpRule | BuildByPlatformRule | AppByIpRule | BuildByPercentageRule,
    Field(discriminator="rule"),
]


class ReleaseInfo(_Shape):
    latestReleaseBuildId: Identifier | None = None
    releaseRedirections: list[Rule] | None = None


class DesiredReleases(_Shape):
    """`desktop-releases.json` in production: the webhook's rules and staged rollouts."""

    latestReleaseBuildId: Identifier | None = None
    releaseRedirections: list[DesiredRule] | None = None


class VersionControlInfo(_Shape):
    branchName: str | None = None
    commitDate: Timestamp | None = None
    commitId: str | None = None
    commitMessage: str | None = None
    hasUncommittedChanges: bool | None = None
    repositoryRemoteUrl: str | None = None
    versionControlSystemName: str | None = None


class ReleaseWebhook(_Shape):
    appId: Identifier
    buildId: Identifier
    userId: str | None = None
    appName: str | None = None
    appVersion: str | None = None
    appNotarizaionBundleId: str | None = None  # sic: ToDesktop's spelling
    electronVersionUsed: str | None = None
    electronVersionSpecified: str | None = None
    sourcePackageManager: str | None = None
    buildStartedAt: Timestamp | None = None
    buildEndedAt: Timestamp | None = None
    versionControlInfo: VersionControlInfo | None = None
    releaseInfo: ReleaseInfo | None = None


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity; JSON (RFC 8259) and PostgreSQL's jsonb do not.
    raise ValueError(f"{name} is not JSON")


class JsonTooDeep(ValueError):
    """A JSON document nested deeper than allowed."""


def json_load_bounded(text: bytes | str, *, max_depth: int = MAX_JSON_DEPTH, **options) -> Any:
    """`json.loads`, refusing (JsonTooDeep) a document nested deeper than `max_depth`.

    A document nested past Python's recursion limit makes the parser itself raise
    RecursionError; that is turned into JsonTooDeep as well."""
    try:
        data = json.loads(text, **options)
    except RecursionError:
        raise JsonTooDeep("nested too deeply") from None
    if json_depth(data) > max_depth:
        raise JsonTooDeep(f"nested too deeply: more than {max_depth} levels")
    return data


def json_depth(data: Any) -> int:
    """How deeply objects and arrays nest in `data` (iterative: no recursion of our own)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 8259 leaves duplicate names undefined: parsers disagree on which one wins, so a body
    # that means two things (say, two buildIds) is refused rather than guessed at.
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"duplicate key {duplicate[:40]!r}")
    return data


def _unstorable_text(data: Any) -> bool:
    """True when a string or key holds NUL or a lone surrogate: valid JSON escapes that
    PostgreSQL's jsonb and UTF-8 cannot store. Iterative: depth is bounded by the parser."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and ("\x00" in item or _has_surrogate(item)):
            return True
    return False


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def payload_parse(*, body: bytes) -> dict[str, Any]:
    """The body as a validated JSON object, or PayloadError with a one-line message."""
    try:
        data = json_load_bounded(
            body.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_unique_keys
        )
    except UnicodeDecodeError:
        raise PayloadError("body is not UTF-8 text")
    except ValueError as exc:
        raise PayloadError(f"body is not JSON ({_short(exc)})")
    if not isinstance(data, dict):
        raise PayloadError(f"body must be a JSON object, not {_json_type(data)}")
    if _unstorable_text(data):
        raise PayloadError("body contains a NUL character or an unpaired surrogate escape")
    try:
        ReleaseWebhook.model_validate(data)
    except ValidationError as exc:
        errors = [_describe(error) for error in exc.errors()[:MAX_ERRORS]]
        summary = "; ".join(f"{e['field']} {e['message']}" for e in errors[:3])
        raise PayloadError(f"invalid payload: {summary}", errors)
    return data


_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "union_tag_not_found": "needs a 'rule' (one of " + ", ".join(RULE_KINDS) + ")",
}


def _describe(error: dict[str, Any], kinds: tuple[str, ...] = RULE_KINDS) -> dict[str, str]:
    kind = error["type"]
    if kind == "union_tag_invalid":
        tag = str(error["ctx"]["tag"])[:40]
        message = f"has an unknown rule {tag!r} (expected one of {', '.join(kinds)})"
    elif kind == "union_tag_not_found":
        message = "needs a 'rule' (one of " + ", ".join(kinds) + ")"
    elif kind == "too_short" and error["loc"][-1:] == ("platforms",):
        message = "must name at least one platform (leave it out for every platform)"
    elif kind == "literal_error" and error["loc"][-1:] != ("rule",):
        message = "must be one of " + error["ctx"]["expected"].replace("'", "")
    else:
        message = _MESSAGES.get(kind) or error["msg"][:1].lower() + error["msg"][1:]
    return {"field": _field(error["loc"]), "message": message}


def _field(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif i and isinstance(loc[i - 1], int) and item in DESIRED_RULE_KINDS:
            continue  # pydantic names the union member chosen by the tag; the reader needs not
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "body"


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _short(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0][:120]


def release_rules_problems(data: dict[str, Any]) -> list[str]:
    """Shape problems of a `desktop-releases.json` object: the webhook's `releaseInfo` rules
    (ids, rule kinds, addresses, platforms) and staged rollouts (percentages, schedules); other
    keys are a team's own and are kept."""
    try:
        DesiredReleases.model_validate(data)
    except ValidationError as exc:
        return [
            f"{e['field']} {e['message']}"
            for e in (_describe(error, DESIRED_RULE_KINDS) for error in exc.errors()[:MAX_ERRORS])
        ]
    return []
