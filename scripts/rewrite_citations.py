#!/usr/bin/env python3
"""Point comments and docstrings at this repository's own documentation (docs/).

Older comments cite a behaviour specification by section ("§8", "§5.3", with the
specification's name in front) and a style guide by habit number, neither of which was ever
part of the repository. This script rewrites every such citation to
the file of docs/ that describes the same behaviour, in *.py, *.md, *.sh, *.yml, *.toml,
Makefile and Dockerfile files of the repository (.venv, .git and node_modules excluded).

    python scripts/rewrite_citations.py            # rewrite, print each change
    python scripts/rewrite_citations.py --check    # print what would change, exit 1 if any

It is idempotent: a second run finds nothing to change. In Markdown files a citation becomes a
relative link; elsewhere it becomes the plain path (`docs/feed.md`). RFC sections
(`RFC 9110 §14`) are left alone.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Section of the old behaviour specification → the docs/ file that now describes it.
SECTIONS = {
    "0": "architecture.md",
    "1": "processes.md",
    "2": "configuration.md",
    "3": "bucket-layout.md",
    "4": "webhooks.md",
    "5": "staging.md",
    "6": "review.md",
    "7": "promotion.md",
    "8": "feed.md",
    "9": "download-links.md",
    "10": "audit.md",
    "11": "api.md",
    "12": "cli.md",
    "13": "budgets.md",
}

# Habit of the old style guide → the docs/ file that explains the same design choice.
HABITS = {
    "1": "architecture.md",  # logic lives in services
    "2": "configuration.md",  # one settings module from the environment
    "3": "architecture.md",  # one boundary module per outside system
    "4": "processes.md",  # thin idempotent Celery tasks, late acks, retries
    "5": "webhooks.md",  # signature on the raw body first, enqueue on commit
    "6": "audit.md",  # the admin is the audit trail
    "7": "architecture.md",  # tests: real parts, fakes at the network
    "8": "architecture.md",  # naming and comments
}

# Whole phrases that read better rewritten by hand than token by token. `{feed}` etc. are
# filled with the docs path (plain or as a Markdown link) like any other citation.
# (Spelled with \u00a7 so that this file does not itself match a search for old citations.)
S = "SPEC \u00a7"
PHRASES = [
    (f"({S}6, mirroring)", "({webhooks})"),
    (f"{S}8 path resolution: which", "Path resolution ({feed}): which"),
    (f"{S}8 path resolution: every", "Path resolution ({feed}): every"),
    (f"{S}0's whole path", "the whole path of {architecture}"),
    (f"{S}13's download-link budget", "The download-link budget of {budgets}"),
    (f"GitHub webhook bodies we mirror ({S}6)", "GitHub webhook bodies we mirror ({webhooks})"),
    (f"each event mirrored ({S}6)", "each event mirrored ({webhooks})"),
    (f"Groups of {S}10 and", "The groups ({audit}) and"),
    ("the improvements \u00a78 asks for", "the improvements {feed} lists"),
    ("The real webhook body of shared/fixtures", "The real webhook body of tests/data"),
]

SUFFIXES = {".py", ".md", ".sh", ".yml", ".yaml", ".toml", ".html", ".txt", ".cfg", ".ini"}
NAMES = {"Makefile", "Dockerfile"}
SKIP_DIRS = {".venv", ".git", "node_modules", "__pycache__", "var", "data"}

_REF = r"\u00a7(?P<sec>\d+)(?:\.\d+)?(?:\s*[\u2013-]\s*\u00a7?\d+(?:\.\d+)?)?(?:\s+step\s+\d+)?"
_HABIT = r"DESIGN\s+habits?\s+(?P<hab>\d+)(?:\s*(?:,|and)\s*\d+)*"
# One citation item: section 8, sections 5.1 to 5.3, section 5 step 4 (with or without the
# specification's name in front), or a habit of the style guide.
_ITEM = rf"(?:(?:SPEC\s+)?{_REF}|{_HABIT})"
ITEM = re.compile(_ITEM)
_PLAIN = re.sub(r"\(\?P<\w+>", "(", _ITEM)  # the same without group names, to repeat it
# A run of items joined by ", " or " and ": sections 1 and 3, section 1 and habit 4.
RUN = re.compile(rf"{_PLAIN}(?:(?:\s*,\s*|\s+and\s+){_PLAIN})*")
RULER = re.compile(r"(?P<head>\s*#+ -{3} .*?) -{3,}\s*$")
RFC_BEFORE = re.compile(r"RFC\s*\d+\s*$")


def doc_ref(name: str, path: Path) -> str:
    """How a docs/ file is cited from `path`: a relative link in Markdown, else the path."""
    target = f"docs/{name}"
    if path.suffix != ".md":
        return target
    rel = os.path.relpath(ROOT / "docs" / name, path.parent).replace(os.sep, "/")
    return f"[{target}]({rel})"


def run_docs(text: str) -> list[str]:
    """The docs files a run of citation items names, in order, each once."""
    names: list[str] = []
    for item in ITEM.finditer(text):
        if item.group("sec") is not None:
            name = SECTIONS.get(item.group("sec"))
        else:
            name = HABITS.get(item.group("hab"))
        if name and name not in names:
            names.append(name)
    return names


def rewrite_line(line: str, path: Path) -> str:
    for old, new in PHRASES:
        if old in line:
            fields = {Path(n).stem.replace("-", "_"): doc_ref(n, path) for n in SECTIONS.values()}
            line = line.replace(old, new.format(**fields))

    def replace(match: re.Match[str]) -> str:
        if RFC_BEFORE.search(line[: match.start()]):
            return match.group(0)  # "RFC 9110 §14": not ours
        names = run_docs(match.group(0))
        if not names:
            return match.group(0)
        return ", ".join(doc_ref(n, path) for n in names)

    new = RUN.sub(replace, line)
    ruler = RULER.match(new)
    if new != line and ruler:  # "# --- Buckets (...) -----": keep the ruler's width
        width = len(line.rstrip("\n"))
        head = ruler.group("head")
        new = (
            head + " " + "-" * max(3, width - len(head) - 1) + ("\n" if line.endswith("\n") else "")
        )
    return new


LIMIT = 100  # ruff's line-length


def wrap(line: str) -> list[str]:
    """Split a comment or docstring line that a rewrite made longer than LIMIT.

    The tail moves to a new line with the same indentation (and `# ` for a comment)."""
    out: list[str] = []
    ending = "\n" if line.endswith("\n") else ""
    rest = line.rstrip("\n")
    indent = rest[: len(rest) - len(rest.lstrip())]
    stripped = rest.lstrip()
    hash_at = rest.find("  # ")
    if stripped.startswith("#"):
        prefix, floor = indent + "# ", len(indent) + 2
    elif hash_at > 0:
        prefix, floor = indent + "# ", hash_at + 4
    else:
        prefix, floor = indent, len(indent) + 4
    while len(rest) > LIMIT:
        cut = rest.rfind(" ", floor, LIMIT + 1)
        if cut <= floor:
            break
        out.append(rest[:cut].rstrip() + "\n")
        rest = prefix + rest[cut + 1 :]
        floor = len(prefix)
    out.append(rest + ending)
    return out


def _shape(source: str) -> str:
    """The module's AST with docstrings blanked: wrapping must change nothing else."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                value.value = ""
    return ast.dump(tree)


def rewrite_python(lines: list[str], new_lines: list[str], path: Path) -> list[str]:
    """Wrap the lines a rewrite pushed past LIMIT, if that leaves the code itself unchanged."""
    wrapped: list[str] = []
    for old, new in zip(lines, new_lines, strict=True):
        too_long = new != old and len(new.rstrip("\n")) > LIMIT
        wrapped.extend(wrap(new) if too_long else [new])
    try:
        if _shape("".join(wrapped)) == _shape("".join(lines)):
            return wrapped
    except SyntaxError:
        pass
    print(f"{path.relative_to(ROOT)}: not wrapped (it would change code); wrap by hand")
    return new_lines


def candidates() -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel = Path(dirpath).relative_to(ROOT)
        dirnames[:] = [
            d for d in dirnames if d not in SKIP_DIRS and not (rel == Path(".") and d == "docs")
        ]
        for filename in filenames:
            path = Path(dirpath) / filename
            if path.suffix in SUFFIXES or filename in NAMES:
                if path.resolve() != Path(__file__).resolve():
                    found.append(path)
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing, exit 1 if needed")
    args = parser.parse_args(argv)
    changed = 0
    for path in candidates():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        lines = text.splitlines(keepends=True)
        new_lines = [rewrite_line(line, path) for line in lines]
        if new_lines == lines:
            continue
        rel = path.relative_to(ROOT)
        for number, (old, new) in enumerate(zip(lines, new_lines, strict=True), start=1):
            if old != new:
                changed += 1
                print(f"{rel}:{number}: {old.strip()}\n{' ' * len(str(rel))}  → {new.strip()}")
        if path.suffix == ".py":
            new_lines = rewrite_python(lines, new_lines, path)
        if not args.check:
            path.write_text("".join(new_lines), encoding="utf-8")
    verb = "would change" if args.check else "changed"
    print(f"{verb} {changed} line(s)", file=sys.stderr)
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
