"""Outside systems are reached only through `releases/integrations/`.

The scan reads every module of the project's packages (AST, no import) and lists each import
of a client library of an outside system: botocore/boto3/s3transfer (buckets, CloudFront),
PyGithub (`github`), requests (ToDesktop, GitHub, outbound notifications). Only the
integrations package may import them; its modules raise their own error types, so no caller
needs the library's exceptions either.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("releases", "cdn", "downloads", "selfhosted", "adoption")
INTEGRATIONS = "releases/integrations/"
CLIENT_LIBRARIES = {"botocore", "boto3", "s3transfer", "github", "requests"}

# (module path, library) → why it may import the library outside the integrations package
ALLOWED = {
    ("releases/demo/run.py", "requests"): (
        "the demo command drives this project's own server over HTTP (health, feed, links); "
        "it never talks to ToDesktop or GitHub"
    ),
}


def imported_libraries(source: str) -> set[str]:
    """The top-level names of the absolute imports in `source` (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found


def client_imports_outside_integrations() -> set[tuple[str, str]]:
    found = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if where.startswith(INTEGRATIONS):
                continue
            libraries = imported_libraries(path.read_text()) & CLIENT_LIBRARIES
            found.update((where, library) for library in libraries)
    return found


def test_no_module_outside_the_integrations_package_imports_a_client_library():
    unlisted = sorted(client_imports_outside_integrations() - ALLOWED.keys())
    assert unlisted == [], "reach the outside system through releases/integrations/"


def test_the_list_names_only_imports_that_still_exist():
    assert sorted(ALLOWED.keys() - client_imports_outside_integrations()) == []


def test_the_scan_sees_top_level_nested_and_dotted_imports_but_not_relative_ones():
    source = (
        "import boto3.session\n"
        "from botocore.exceptions import ClientError\n"
        "from . import github\n"
        "from releases.integrations import github as gh\n"
        "def f():\n    import requests\n"
    )
    assert imported_libraries(source) == {"boto3", "botocore", "releases", "requests"}


def test_the_integrations_package_is_where_the_libraries_are_used():
    inside = set()
    for path in (ROOT / INTEGRATIONS).glob("*.py"):
        inside |= imported_libraries(path.read_text()) & CLIENT_LIBRARIES
    assert {"botocore", "boto3", "github", "requests"} <= inside
