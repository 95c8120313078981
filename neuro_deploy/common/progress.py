"""Progress reporting: a live bar on a terminal, a plain line every 10% in logs, both with an ETA."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(stderr=True)

Update = Callable[[float, int, str], None]  # (done, total, status); done may count parts of items

#: -1 quiet (-q: no progress), 0 normal, 1 verbose (-v: a log line for every update); set by the CLI.
verbosity = 0


@contextmanager
def progress(description: str, logs: bool = True) -> Iterator[Update]:
    """Yield `update(done, total, status)`. With `logs=False` (a command whose late checks can still
    fail, where a log line before the error would break the one-line contract), logs get lines only
    with -v; a terminal always gets the bar, which vanishes when done so an error stays one line."""
    if verbosity < 0 or (not logs and verbosity < 1 and not console.is_terminal):
        yield lambda done, total, status="": None
        return
    if console.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   TextColumn("{task.fields[status]}"))
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(description, total=None, status="")
            yield lambda done, total, status="": bar.update(task, completed=done, total=total, status=status)
        return
    started, last_decile = time.perf_counter(), -1
    first: tuple[float, float] | None = None  # after the first report the rate is measured from it, not
    # from the start, so a long start-up (a Lava network compiling) does not inflate the ETA

    def log(done: float, total: int, status: str = "") -> None:
        nonlocal last_decile, first
        now = time.perf_counter()
        first = first or (now, done)
        decile = int(done * 10 // max(total, 1)) if verbosity < 1 else int(done)
        if decile > last_decile:
            last_decile = decile
            elapsed = now - started
            since, base = first if done > first[1] else (started, 0.0)
            eta = f" ETA {(now - since) * (total - done) / (done - base):.0f}s" if 0 < done < total else ""
            print(f"{description}: {int(done)}/{total} {elapsed:.0f}s{eta} {status}", file=sys.stderr, flush=True)

    yield log
