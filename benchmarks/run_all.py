"""Run every benchmark in turn (`make bench`), each in its own process, printing its figures.

    .venv/bin/python benchmarks/run_all.py

Takes about 15 minutes on the project's 2-core machine; benchmarks/README.md holds the figures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["float_inference.py", "convert_release.py", "fast_vs_lava.py", "fidelity.py", "energy_overhead.py",
           "analytic_compare.py", "evaluate_ray.py"]


def main() -> int:
    failed = []
    for script in SCRIPTS:
        print(f"## {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)]).returncode != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
