"""bench/harness.py, what every bench script shares (bench/README.md): it reads wrk's output
right, starts gunicorn and nginx the way the scripts rely on, and no bench script imports
another one (or keeps its own copy of a harness function)."""

from __future__ import annotations

import ast
import http.client
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bench.harness import (
    ROOT,
    free_port,
    parse_wrk,
    prepare_small,
    start_gunicorn,
    start_nginx,
    wait_for,
)

BENCH = ROOT / "bench"

# Real `wrk --latency` outputs (wrk 4.1.0, Debian), captured against small local servers.
# Some answers 503 and some slower than --timeout 1s: both kinds of errors.
WITH_TIMEOUTS = """\
Running 3s test @ http://127.0.0.1:18766/
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    42.52ms    7.56ms  48.80ms   96.49%
    Req/Sec    77.37     20.27   141.00     76.67%
  Latency Distribution
     50%   43.96ms
     75%   44.03ms
     90%   44.16ms
     99%   48.01ms
  232 requests in 3.00s, 26.33KB read
  Socket errors: connect 0, read 0, write 0, timeout 4
  Non-2xx or 3xx responses: 24
Requests/sec:     77.24
Transfer/sec:      8.76KB
"""
# Latencies over a second: wrk switches to seconds (and pads "1.25s " with a space).
IN_SECONDS = (
    "Running 3s test @ http://127.0.0.1:18766/\n"
    "  1 threads and 8 connections\n"
    "  Thread Stats   Avg      Stdev     Max   +/- Stdev\n"
    "    Latency   152.72ms  282.96ms   1.25s    88.45%\n"
    "    Req/Sec    77.80     19.77   140.00     80.00%\n"
    "  Latency Distribution\n"
    "     50%   44.01ms\n"
    "     75%   47.86ms\n"
    "     90%  622.46ms\n"
    "     99%    1.25s \n"
    "  233 requests in 3.00s, 26.44KB read\n"
    "  Non-2xx or 3xx responses: 24\n"
    "Requests/sec:     77.59\n"
    "Transfer/sec:      8.80KB\n"
)
# Every answer a 200, the median under a millisecond (microseconds).
IN_MICROSECONDS = """\
Running 1s test @ http://127.0.0.1:18765/ok.txt
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.24ms    1.68ms  11.62ms   86.65%
    Req/Sec     1.12k   288.22     1.44k    72.73%
  Latency Distribution
     50%  488.00us
     75%    1.43ms
     90%    3.52ms
     99%    8.29ms
  1225 requests in 1.11s, 225.08KB read
Requests/sec:   1107.93
Transfer/sec:    203.57KB
"""


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        (WITH_TIMEOUTS, {"rps": 77.24, "p50": 43.96, "p99": 48.01, "errors": 24 + 4}),
        (IN_SECONDS, {"rps": 77.59, "p50": 44.01, "p99": 1250.0, "errors": 24}),
        (IN_MICROSECONDS, {"rps": 1107.93, "p50": 0.488, "p99": 8.29, "errors": 0}),
    ],
    ids=["timeouts-and-non-2xx", "seconds", "microseconds"],
)
def test_parse_wrk_reads_real_wrk_latency_output(out, expected):
    result = parse_wrk(out)
    assert result == pytest.approx(expected)
    assert isinstance(result["errors"], int)


def _scripts() -> dict[str, ast.Module]:
    return {
        path.stem: ast.parse(path.read_text(), filename=str(path))
        for path in sorted(BENCH.glob("*.py"))
        if path.stem != "harness"
    }


def _imports(tree: ast.Module) -> set[str]:
    """Every module an import statement names, `from bench import x` as `bench.x` and a
    relative `from . import x` / `from .x import y` as `bench.x`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = f"bench.{module}" if module else "bench"
            names.add(module)
            if module == "bench":
                names.update(f"bench.{alias.name}" for alias in node.names)
    return names


def test_no_bench_script_imports_another_bench_script():
    scripts = _scripts()
    assert {"feed", "downloads", "slow_clients", "s3_latency"} <= scripts.keys()
    for name, tree in scripts.items():
        # `python bench/x.py` puts bench/ first on sys.path: `import feed` would be one too.
        others = {f"bench.{other}" for other in scripts} | set(scripts)
        assert not _imports(tree) & others, f"bench/{name}.py imports another bench script"


def test_every_bench_script_uses_the_harness_and_keeps_no_copy_of_it():
    harness = ast.parse((BENCH / "harness.py").read_text())
    shared = {node.name for node in harness.body if isinstance(node, ast.FunctionDef)}
    assert {"ensure_tools", "free_port", "wait_for", "start_gunicorn", "start_nginx", "wrk"} <= (
        shared
    )
    for name, tree in _scripts().items():
        source = ast.unparse(tree)
        if 'if __name__ == "__main__"' in source or "if __name__ == '__main__'" in source:
            assert "bench.harness" in _imports(tree), f"bench/{name}.py does not use the harness"
        defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert not defined & shared, f"bench/{name}.py keeps its own {defined & shared}"


def _get(url: str) -> tuple[int, bytes]:
    host, _, rest = url.removeprefix("http://").partition("/")
    connection = http.client.HTTPConnection(host, timeout=10)
    try:
        connection.request("GET", f"/{rest}")
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_start_gunicorn_serves_the_data_dir_with_make_runs_settings_and_the_overrides(tmp_path):
    bucket_dir = prepare_small(tmp_path)
    # An override of the harness's own environment: the feed must read the other bucket.
    bucket_dir.rename(bucket_dir.with_name("elsewhere"))
    port = free_port()
    process = start_gunicorn(tmp_path, port, PRODUCTION_BUCKET="elsewhere")
    try:
        wait_for(f"http://127.0.0.1:{port}/update/my-ip", process)
        status, body = _get(f"http://127.0.0.1:{port}/update/latest-mac.yml")
        assert (status, body[:16]) == (200, b"version: 42.0.0\n")
        assert _get(f"http://127.0.0.1:{port}/update/latest-mac-42.0.0.yml")[0] == 200
        # selfhosted/gunicorn.conf.py's access log, written to the data directory.
        deadline = time.monotonic() + 10
        while b"/update/latest-mac.yml" not in (tmp_path / "access.log").read_bytes():
            assert time.monotonic() < deadline, (tmp_path / "access.log").read_bytes()
            time.sleep(0.1)
    finally:
        _stop(process)


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx is not installed")
def test_start_nginx_serves_the_directory_given():
    # Not pytest's tmp_path: nginx's workers (www-data when started as root) must read it.
    with tempfile.TemporaryDirectory(prefix="bench-harness-") as tmp:
        data_dir, root = Path(tmp), Path(tmp) / "served"
        data_dir.chmod(0o755)
        root.mkdir()
        (root / "latest-mac.yml").write_bytes(b"version: 42.0.0\n")
        port = free_port()
        process = start_nginx(data_dir, root, port)
        try:
            wait_for(f"http://127.0.0.1:{port}/latest-mac.yml", process)
            assert _get(f"http://127.0.0.1:{port}/latest-mac.yml") == (200, b"version: 42.0.0\n")
            assert _get(f"http://127.0.0.1:{port}/nginx.conf")[0] == 404  # only `root`
        finally:
            _stop(process)


@pytest.mark.slow
def test_wait_for_exits_when_the_process_ends_or_nothing_answers():
    ended = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(SystemExit, match="exited with 3"):
        wait_for(f"http://127.0.0.1:{free_port()}/", ended)
    silent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(SystemExit, match="did not answer within 1 s"):
            wait_for(f"http://127.0.0.1:{free_port()}/", silent, seconds=1)
    finally:
        _stop(silent)
