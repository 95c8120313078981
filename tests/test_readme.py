"""The README's example runs as written, and prints the lines the README shows."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("neuro-deploy")


def _console_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(command, lines shown after it) for every `$ ` line of the README's console blocks; `...` marks a cut."""
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif line.strip():
                steps[-1][1].append(line.strip())
    return steps


def test_the_readme_example_prints_what_the_readme_shows(tmp_path):
    steps = _console_blocks((REPO / "README.md").read_text())
    assert len(steps) >= 4 and all(cmd.startswith("neuro-deploy ") for cmd, _ in steps)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "100"}
    for command, shown in steps:
        args = [str(CLI), *command.split()[1:]]
        proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{command}: {proc.stderr[-2000:]}"
        printed = [line.strip() for line in (proc.stdout + proc.stderr).splitlines()]
        for line in shown:
            if line != "...":
                assert line in printed, f"{command}: the README shows {line!r}, the command printed:\n" + proc.stdout[-3000:]
    assert (tmp_path / "derained.png").is_file() and (tmp_path / "deployable.net").is_file()
