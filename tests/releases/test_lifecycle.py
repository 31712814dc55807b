"""The release lifecycle is one module: its steps, its table, and nobody else writing states."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from releases.models import Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.services import lifecycle

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("releases", "cdn", "downloads")
LIFECYCLE = ROOT / "releases" / "services" / "lifecycle.py"
WRITES = {"update", "create", "get_or_create", "update_or_create", "bulk_create", "bulk_update"}
COLUMNS = {"status", "state"}
# Models with a `status` of their own, outside the release lifecycle (delivery outcomes).
OTHER_MODELS = {"Notification", "CdnPurge"}
# Other things called `status`, by file and write.
NOT_RELEASE_STATES = {
    ("releases/demo/todesktop_origin.py", "entry.status = …"),  # a logged HTTP answer's status
}


def _root_name(node: ast.AST) -> str:
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _not_model_classes(tree: ast.AST) -> set[int]:
    """Line ranges of classes that are not models (an exception's `self.status` is HTTP's)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = {_root_name(b) + "." + getattr(b, "attr", "") for b in node.bases}
            if not any(base.endswith("Model") or "models" in base for base in bases):
                lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def _other_status(value: ast.AST) -> bool:
    """`status=DeliveryStatus.…`: a delivery's outcome, not a release state."""
    return isinstance(value, ast.Attribute) and _root_name(value) == "DeliveryStatus"


def _writes(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    outside_models = _not_model_classes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if not (isinstance(target, ast.Attribute) and target.attr in COLUMNS):
                    continue
                if _root_name(target) == "self" and node.lineno in outside_models:
                    continue
                found.append((node.lineno, f"{ast.unparse(target)} = …"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name == "setattr" and len(node.args) > 1:
                key = node.args[1]
                if isinstance(key, ast.Constant) and key.value in COLUMNS:
                    found.append((node.lineno, f"setattr(…, {key.value!r})"))
            if name not in WRITES and name not in ("Build", "ReleaseRequest"):
                continue
            if _root_name(node.func) in OTHER_MODELS:
                continue
            keys = {kw.arg for kw in node.keywords if not _other_status(kw.value)}
            for value in [*node.args, *(kw.value for kw in node.keywords)]:
                if isinstance(value, ast.Dict):
                    keys |= {k.value for k in value.keys if isinstance(k, ast.Constant)}
            for column in sorted(keys & COLUMNS):
                found.append((node.lineno, f"{name}({column}=…)"))
    return found


def _scanned_files() -> list[Path]:
    files = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts and path != LIFECYCLE:
                files.append(path)
    return files


def test_nothing_but_the_lifecycle_module_writes_a_status_or_a_state():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in _scanned_files()
        for line, what in _writes(ast.parse(path.read_text(), str(path)))
        if (str(path.relative_to(ROOT)), what) not in NOT_RELEASE_STATES
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "source",
    [
        "Build.objects.filter(pk=1).update(status='failed')",
        "build.release_requests.filter(state='merged').update(state='failed', x=1)",
        "ReleaseRequest.objects.create(build=b, state='pending')",
        "fields.update(state='merged')",
        "type(b).objects.filter(pk=1).update(**{'status': 'live'})",
        "release.state = 'live'",
        "setattr(build, 'status', 'live')",
        "class Build(models.Model):\n    def fail(self):\n        self.status = 'failed'",
        "Build(build_id='x', status='live').save()",
        "Build.objects.update_or_create(build_id='x', defaults={'status': 'live'})",
    ],
)
def test_the_scan_finds_every_way_of_writing_a_state(source):
    assert len(_writes(ast.parse(source))) == 1


def test_the_scan_leaves_reads_and_other_models_alone():
    source = (
        "Build.objects.filter(status='live').count()\n"
        "if release.state == 'failed': pass\n"
        "Notification.objects.filter(pk=1).update(status='delivered')\n"
        "CdnPurge.objects.filter(pk=1).update(status='failed')\n"
        "github.get_pulls(state='open')\n"
        "Notification.objects.filter(pk=1).first().update(status=DeliveryStatus.FAILED)\n"
        "class Refused(Exception):\n    def __init__(self, status):\n        self.status = status\n"
    )
    assert _writes(ast.parse(source)) == []


STEP_ROW = re.compile(r"^\| (\w+) \| ([^|]*) \| (\w+) \|", re.M)


def _table(section: str, states: list[str]) -> dict[str, tuple[set[str], str]]:
    """step → (from-states, to-state) as the Markdown table says."""
    named = {"unsettled": set(lifecycle.UNSETTLED), "unmerged": set(lifecycle.UNMERGED)}
    table = {}
    for name, sources, target in STEP_ROW.findall(section):
        if name == "step":
            continue
        parts = [p.strip() for p in re.sub(r" \([^)]*\)", "", sources).split(",")]
        if parts[0].startswith("any but "):
            parts[0] = parts[0].removeprefix("any but ")
            table[name] = (set(states) - set(parts), target)
        else:
            table[name] = (set().union(*(named.get(p, {p}) for p in parts)), target)
    return table


def test_the_table_in_the_docstring_is_the_steps():
    builds, releases = lifecycle.__doc__.split("Release request (`ReleaseRequest.state`):")
    expected = {n: (set(s.sources), s.target) for n, s in lifecycle.BUILD_STEPS.items()}
    for lease_taken in ("claim", "give_up"):  # also from a `staging` whose lease lapsed
        expected[lease_taken][0].add(BuildStatus.STAGING)
    assert _table(builds, BuildStatus.values) == expected
    expected = {n: (set(s.sources), s.target) for n, s in lifecycle.RELEASE_STEPS.items()}
    assert _table(releases, ReleaseState.values) == expected


def test_the_readme_has_the_same_table():
    assert lifecycle.lifecycle_table() in (ROOT / "README.md").read_text()


def test_every_state_is_reachable_and_named_in_the_table():
    builds = {s.target for s in lifecycle.BUILD_STEPS.values()} | {BuildStatus.RECEIVED}
    releases = {s.target for s in lifecycle.RELEASE_STEPS.values()} | {ReleaseState.PENDING}
    assert builds == set(BuildStatus.values)
    assert releases == set(ReleaseState.values)


@pytest.mark.django_db
def test_a_step_from_a_state_it_does_not_leave_moves_nothing_and_records_nothing():
    from releases.models import AuditEvent

    build = Build.objects.create(build_id="b1", app_id="app", status=BuildStatus.LIVE)
    release = ReleaseRequest.objects.create(build=build, state=ReleaseState.LIVE)
    event = lifecycle.Event(kind="test.moved", message="moved")
    moved = lifecycle.move(release=release, step="reject", build_step="reject", event=event)
    assert not moved
    build.refresh_from_db()
    release.refresh_from_db()
    assert (build.status, release.state) == (BuildStatus.LIVE, ReleaseState.LIVE)
    assert not AuditEvent.objects.filter(kind="test.moved").exists()


@pytest.mark.django_db
def test_a_failing_step_needs_its_reason():
    build = Build.objects.create(build_id="b2", app_id="app", status=BuildStatus.STAGING)
    with pytest.raises(lifecycle.StepError):
        lifecycle.move(build=build, build_step="fail")
    with pytest.raises(lifecycle.StepError):
        lifecycle.move(build=build, build_step="no_such_step")
    build.refresh_from_db()
    assert build.status == BuildStatus.STAGING


@pytest.mark.django_db
def test_the_event_of_a_step_is_in_the_same_transaction_as_the_state():
    """A step whose event cannot be written does not change the state either."""
    from django.db import transaction

    from releases.models import AuditEvent

    build = Build.objects.create(build_id="b3", app_id="app", status=BuildStatus.STAGING)
    release = ReleaseRequest.objects.create(build=build)
    unencodable = lifecycle.Event(kind="staging.failed", message="x", data={"bad": object()})
    with pytest.raises(TypeError), transaction.atomic():
        lifecycle.move(
            release=release,
            step="fail_staging",
            build_step="fail",
            independent=True,
            reason="broken",
            event=unencodable,
        )
    build.refresh_from_db()
    release.refresh_from_db()
    assert (build.status, release.state) == (BuildStatus.STAGING, ReleaseState.PENDING)
    assert not AuditEvent.objects.filter(kind="staging.failed").exists()
