"""No import sits inside a function to dodge an import cycle.

The scan reads every module of the project's packages (AST, no import) and lists each import
statement inside a function. Each one that remains is listed below with its reason; a new one
fails this test until it is hoisted to the top of its module or listed here with a reason.
A listed one that is gone fails too, so the list stays true.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("releases", "cdn", "downloads", "selfhosted", "adoption")

APP_LOADING = "Django app loading: imported once the app registry is ready (models loaded)"
GEVENT_ONLY = (
    "gevent loads only inside gunicorn's gevent worker; Celery and manage.py never import it "
    "(its monkey-patching must not reach them)"
)
S3_ONLY = "boto3/botocore load only when an S3 bucket is used; the filesystem backend never does"

# (module path, function, imported module) → why it stays inside the function
ALLOWED = {
    ("releases/apps.py", "_buckets_prepare", "releases.integrations.buckets"): APP_LOADING,
    ("releases/apps.py", "_buckets_check", "releases.integrations.buckets"): APP_LOADING,
    ("releases/apps.py", "ready", "releases"): APP_LOADING,
    ("releases/migrations/0008_review_console.py", "roles", "releases.roles"): (
        "a data migration calls the code of its time only when it runs"
    ),
    ("selfhosted/settings.py", "_broker_transport_known", "kombu.transport"): (
        "settings load before anything else; kombu only when a broker URL is checked"
    ),
    ("selfhosted/green.py", "green_sendfile", "gevent.socket"): GEVENT_ONLY,
    ("selfhosted/green.py", "install", "gevent"): GEVENT_ONLY,
    ("adoption/counting.py", "_in_os_thread", "gevent"): GEVENT_ONLY,
    ("selfhosted/gunicorn.conf.py", "post_request", "gevent"): GEVENT_ONLY,
    ("selfhosted/gunicorn.conf.py", "post_worker_init", "selfhosted.green"): GEVENT_ONLY,
    ("selfhosted/gunicorn.conf.py", "post_worker_init", "selfhosted.wire"): (
        "gunicorn reads its config file before the project is on sys.path (--chdir)"
    ),
    ("releases/integrations/buckets.py", "_s3_bucket", "botocore.config"): S3_ONLY,
    ("releases/integrations/buckets.py", "_s3_bucket", "storages.backends.s3"): S3_ONLY,
    ("releases/integrations/buckets.py", "copy_from", "boto3.s3.transfer"): S3_ONLY,
    ("releases/integrations/buckets.py", "_s3_errors", "botocore.exceptions"): S3_ONLY,
}


def function_imports(source: str) -> set[tuple[str, str]]:
    """(function, imported module) of every import statement inside a function."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom):
                    found.add((node.name, "." * inner.level + (inner.module or "")))
                elif isinstance(inner, ast.Import):
                    found.update((node.name, alias.name) for alias in inner.names)
    return found


def project_function_imports() -> set[tuple[str, str, str]]:
    found = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            found.update((where, *pair) for pair in function_imports(path.read_text()))
    return found


def test_every_import_inside_a_function_is_listed_with_its_reason():
    unlisted = sorted(project_function_imports() - ALLOWED.keys())
    assert unlisted == [], "hoist these to the top of the module, or list them with a reason"


def test_the_list_names_only_imports_that_still_exist():
    assert sorted(ALLOWED.keys() - project_function_imports()) == []


def test_the_scan_finds_an_import_inside_a_function_and_a_method():
    source = (
        "import os\n"
        "def f():\n    from releases import tasks\n"
        "class C:\n    async def m(self):\n        import json\n"
    )
    assert function_imports(source) == {("f", "releases"), ("m", "json")}


def test_tasks_import_the_services_and_no_service_imports_the_tasks():
    importers = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "releases" / "services").rglob("*.py")
        if "releases.tasks" in _imported(path.read_text())
        or ("releases", "tasks") in _imported_names(path.read_text())
    ]
    assert importers == []


def _imported(source: str) -> set[str]:
    return {
        node.module or ""
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    }


def _imported_names(source: str) -> set[tuple[str, str]]:
    return {
        (node.module or "", alias.name)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
