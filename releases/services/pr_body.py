"""Title and body of a release pull request (docs/review.md): what the security lead reviews.

Everything a reviewer needs without leaving the PR: the build's details (the commit linked
when its remote is on GitHub), every staged file with its size, hashes and verification
result, where the files wait, a link to the build's page in the admin, and what merging does.
Values come from the signed webhook and the staging run; they are escaped for Markdown tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from django.conf import settings

from releases.control_files import BUILDS_FILE, RELEASES_FILE
from releases.models import BuildFile, ReleaseRequest, Verification

MARKS = {
    Verification.VERIFIED: "✓",
    Verification.MISMATCH: "✗",
    Verification.UNCHECKED: "—",
    Verification.PENDING: "pending",
}
# https://github.com/owner/repo(.git), git@github.com:owner/repo.git, ssh://git@github.com/…
GITHUB_REMOTE = re.compile(
    r"^(?:git\+)?(?:https?://|ssh://)?(?:[^@/]+@)?github\.com[:/]"
    r"(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?/?$"
)
COMMIT_ID = re.compile(r"^[0-9a-fA-F]{7,40}$")


def pr_title(*, release: ReleaseRequest) -> str:
    build = release.build
    return f"[release] Add build {build.build_id} (v{_version(release)})"


def pr_body(
    *,
    release: ReleaseRequest,
    files: Iterable[BuildFile],
    problems: dict[str, str],
    base: str,
) -> str:
    """The Markdown body. `problems` maps a metadata file name to why its content on `base`
    was not used (missing, invalid JSON); `base` is the default branch."""
    files = list(files)
    sections = [
        _details(release),
        _files(release, files),
        _notes(problems, base),
        _merging(release, files, base),
        _footer(release),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _version(release: ReleaseRequest) -> str:
    return release.build.version or str(release.payload.get("appVersion") or "")


def _cell(value) -> str:
    """Plain text safe inside a Markdown table cell."""
    if value in (None, ""):
        return "—"
    text = " ".join(str(value).split())
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("`", "\\`").replace("*", "\\*").replace("_", "\\_").replace("[", "\\[")


def _code(value) -> str:
    """An inline code span that survives backticks and pipes in the value."""
    text = " ".join(str(value).split()).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def _utc(value) -> str:
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return _cell(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _commit(vcs: dict) -> str:
    commit = str(vcs.get("commitId") or "")
    if not commit:
        return "—"
    if not COMMIT_ID.match(commit):
        return _cell(commit)
    remote = GITHUB_REMOTE.match(str(vcs.get("repositoryRemoteUrl") or "").strip())
    if remote is None:
        return _code(commit[:8])
    url = f"https://github.com/{remote['owner']}/{remote['repo']}/commit/{commit}"
    return f"[`{commit[:8]}`]({url})"


def _details(release: ReleaseRequest) -> str:
    payload, build = release.payload or {}, release.build
    vcs = payload.get("versionControlInfo") or {}
    if not isinstance(vcs, dict):
        vcs = {}
    dirty = vcs.get("hasUncommittedChanges")
    rows = [
        ("App", f"{_cell(payload.get('appName'))} ({_code(build.app_id)})"),
        ("App version", _cell(_version(release))),
        ("Build ID", _code(build.build_id)),
        ("Electron version", _cell(payload.get("electronVersionUsed"))),
        ("Commit", _commit(vcs)),
        ("Commit message", _cell(str(vcs.get("commitMessage") or "").split("\n")[0])),
        ("Branch", _cell(vcs.get("branchName"))),
        ("Uncommitted changes", "⚠️ yes" if dirty else ("no" if dirty is False else "—")),
        ("Build started", _utc(payload.get("buildStartedAt"))),
        ("Build ended", _utc(payload.get("buildEndedAt"))),
    ]
    lines = ["| Category | Details |", "|----------|---------|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def _size(size: int | None) -> str:
    if size is None:
        return "—"
    if size < 1024 * 1024:
        return f"{size:,} bytes"
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2)):
        if size >= factor:
            return f"{size / factor:.1f} {unit} ({size:,} bytes)"
    return f"{size:,} bytes"  # pragma: no cover


def _hashes(file: BuildFile) -> str:
    parts = [f"sha512 {_code(file.sha512)}" if file.sha512 else ""]
    parts.append(f"sha256 {_code(file.sha256)}" if file.sha256 else "")
    return "<br>".join(part for part in parts if part) or "—"


def _files(release: ReleaseRequest, files: list[BuildFile]) -> str:
    build = release.build
    total = sum(file.size or 0 for file in files)
    lines = [
        "### Files",
        "",
        f"The staging bucket holds {len(files)} files ({_size(total).split(' (')[0]} in all) "
        f"under the prefix {_code(build.staging_prefix)}.",
        "",
        "| File | Size | SHA-512 / SHA-256 | Verified | Uploaded |",
        "|------|------|-------------------|----------|----------|",
    ]
    for file in files:
        uploaded = _utc(file.staged_at.isoformat()) if file.staged_at else "—"
        mark = MARKS.get(file.verification, _cell(file.verification))
        lines.append(
            f"| {_code(file.name)} | {_size(file.size)} | {_hashes(file)} | {mark} | {uploaded} |"
        )
    lines += [
        "",
        "✓ size and hashes match the build's manifests · ✗ they do not · — no manifest lists "
        "a hash for this file (e.g. a blockmap); its hashes were computed while staging.",
    ]
    return "\n".join(lines)


def _notes(problems: dict[str, str], base: str) -> str:
    notes = []
    for name, problem in problems.items():
        if not problem:
            continue
        if problem == "missing":
            notes.append(f"- `{name}` does not exist on `{base}` yet; this PR creates it.")
        else:
            empty = "`[]`" if name == BUILDS_FILE else "`{}`"
            notes.append(
                f"- ⚠️ `{name}` on `{base}` is {_cell(problem)}; this PR starts it again from "
                f"{empty}, so everything it held before is dropped. Check the diff."
            )
    return "### Notes\n\n" + "\n".join(notes) if notes else ""


def _release_summary(info: dict) -> str:
    parts = []
    if info.get("latestReleaseBuildId"):
        parts.append(f"`latestReleaseBuildId` → {_code(info['latestReleaseBuildId'])}")
    rules = info.get("releaseRedirections")
    if rules is not None:
        count = len(rules) if isinstance(rules, list) else 0
        parts.append(f"`releaseRedirections` → {count} rule{'s' if count != 1 else ''}")
    return "; ".join(parts)


REVIEWED_HEAD_NOTE = (
    "Only the commit an approving review was given on is promoted: after a new commit, approve "
    "again before merging, or the merge is recorded as *merged with unreviewed commits* and "
    "nothing of it is published."
)


def _merging(release: ReleaseRequest, files: list[BuildFile], base: str) -> str:
    build, info = release.build, release.release_info
    version = _cell(_version(release))
    what = f"This PR adds build {_code(build.build_id)} (v{version}) to `{BUILDS_FILE}`"
    if info:
        what += f" and releases it in `{RELEASES_FILE}` ({_release_summary(info)})."
        effect = (
            "the update feed and the download links serve this build as the latest release."
            if info.get("latestReleaseBuildId") == build.build_id
            else "the update feed and the download links follow the new release settings."
        )
        after = f"then publishes `{BUILDS_FILE}` and `{RELEASES_FILE}` there, so {effect}"
    else:
        what += f"; `{RELEASES_FILE}` is not changed."
        after = (
            f"then publishes `{BUILDS_FILE}` there. The latest release stays as it is; this "
            "build is reachable through its version and build URLs."
        )
    return "\n".join(
        [
            "### What merging does",
            "",
            what,
            "",
            f"Once approved and merged into `{base}`, the promotion worker copies the "
            f"{len(files)} files under {_code(build.staging_prefix)} from the staging bucket "
            f"to the production bucket, {after} Closing this PR without merging releases nothing.",
            *(["", REVIEWED_HEAD_NOTE] if settings.REQUIRE_REVIEWED_HEAD else []),
        ]
    )


def _footer(release: ReleaseRequest) -> str:
    build = release.build
    admin = f"{settings.PUBLIC_BASE_URL}{build.get_admin_url()}"
    return (
        f"---\n[Build {_code(build.build_id)} in the admin]({admin}) — files, hashes, "
        f"verification and the audit trail · release request #{release.pk}"
    )
