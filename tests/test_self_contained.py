"""A bare clone passes: the tests read nothing outside the repository, and the data they need ships.

A user's clone has no folder beside it; a test that reads one fails (or skips) for them alone.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from conftest import REFERENCE, REPO

TESTS = REPO / "tests"
#: ways a test file could reach past the repository: the team's folder beside the checkout,
#: an absolute path on the build machine, or climbing from a test file two or more levels up.
ESCAPES = {
    "a folder named shared": re.compile(r"""\bshared[/\\]|["']shared["']"""),
    "an absolute path on this machine": re.compile(r"""["'](/work|/home|/tmp/[\w.-]+/)"""),
    "a climb above the repository": re.compile(r"""(?<![\w.])__file__\)(\.resolve\(\))?\.parents\[[2-9]\]|\.\.[/\\]\.\.[/\\]"""),
}
#: `| `name` | `sha256` | ...` rows of the reference data's README table
ROW = re.compile(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|", re.MULTILINE)


def _source_files() -> list[Path]:
    """Every text file under tests/ that a person wrote (data files, caches and this file, which
    must spell the patterns out, excluded)."""
    return sorted(p for p in TESTS.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p != Path(__file__).resolve()
                  and p.suffix in {".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".json", ".yaml", ".sh"}
                  and p.stat().st_size < 1_000_000)


def test_no_test_file_reads_outside_the_repository():
    found = [f"{p.relative_to(REPO)}:{text[:m.start()].count(chr(10)) + 1}: {what}"
             for p in _source_files() for text in [p.read_text(errors="replace")]
             for what, pattern in ESCAPES.items() for m in pattern.finditer(text)]
    assert not found, "\n".join(found)


def test_the_escape_patterns_catch_the_old_reference_path():
    """The scan is not vacuous: the line this repository once had is caught."""
    old = 'REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"'
    assert {what for what, pattern in ESCAPES.items() if pattern.search(old)} == {
        "a folder named shared", "a climb above the repository"}


def test_reference_data_ships_with_its_recorded_checksums():
    listed = dict(ROW.findall((REFERENCE / "README.md").read_text()))
    assert len(listed) == 4
    present = {p.name for p in REFERENCE.iterdir() if p.name != "README.md"}
    assert present == set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((REFERENCE / name).read_bytes()).hexdigest() == digest, name


def test_reference_data_is_tracked_by_git_not_ignored():
    ignore = (REPO / ".gitignore").read_text().split()
    for name in (p.name for p in REFERENCE.iterdir()):
        assert not any(Path(name).match(rule) for rule in ignore if rule and not rule.endswith("/")), name
