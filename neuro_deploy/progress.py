"""Progress reporting: a live bar on a terminal, a plain line every 10% in logs."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(stderr=True)

Update = Callable[[int, int, str], None]  # (done, total, status)


@contextmanager
def progress(description: str) -> Iterator[Update]:
    """Yield `update(done, total, status)`."""
    if console.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   TextColumn("{task.fields[status]}"))
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(description, total=None, status="")
            yield lambda done, total, status="": bar.update(task, completed=done, total=total, status=status)
        return
    started, last_decile = time.perf_counter(), -1

    def log(done: int, total: int, status: str = "") -> None:
        nonlocal last_decile
        decile = done * 10 // max(total, 1)
        if decile > last_decile:
            last_decile = decile
            print(f"{description}: {done}/{total} {time.perf_counter() - started:.0f}s {status}",
                  file=sys.stderr, flush=True)

    yield log
