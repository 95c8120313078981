"""Memory estimates checked before the work starts.

A step count, time steps or size a hundred times too large would otherwise grow until the
kernel kills the process (no message) or fail to allocate minutes later. Commands estimate
what they need and refuse, in one line naming the estimate and the override, anything above
the limit: `--max-memory SIZE` (or NEURO_DEPLOY_MAX_MEMORY), by default 90% of the memory
available now.
"""

from __future__ import annotations

import math
import os
import re

from neuro_deploy.errors import NeuroDeployError

ENV = "NEURO_DEPLOY_MAX_MEMORY"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
AVAILABLE_SHARE = 0.9


def parse_size(text: str) -> int:
    """`'40G'`, `'512M'`, `'2e9'` (bytes) -> bytes; `'0'` means no limit."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if match is None:
        raise NeuroDeployError(f"memory size {text!r}: expected a number of bytes with an optional K, M, G or T "
                               "(e.g. 40G; 0 for no limit)")
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not math.isfinite(value):
        raise NeuroDeployError(f"memory size {text!r} is not finite")
    return int(value)


def format_size(n: float) -> str:
    for unit in ("T", "G", "M", "K"):
        if n >= _UNITS[unit]:
            return f"{n / _UNITS[unit]:.1f} {unit}B"
    return f"{int(n)} B"


def available() -> int:
    """Memory the process can use now: MemAvailable on Linux, else the physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


#: the `--max-memory` of the current command, which takes precedence over the environment.
override: str | None = None


def limit() -> tuple[int | None, str]:
    """The limit in bytes (None: none) and how to name it in a message."""
    given = override or os.environ.get(ENV)
    if given:
        value = parse_size(given)
        return (value or None), f"limit set by --max-memory/{ENV}"
    return int(available() * AVAILABLE_SHARE), "memory available"


def check(estimate: float, what: str, lower: str) -> None:
    """Refuse `what` (e.g. "simulate --steps 300000") when its `estimate` in bytes exceeds the limit;
    `lower` says which option to reduce."""
    bound, source = limit()
    if bound is None or estimate <= bound:
        return
    suggestion = format_size(estimate * 1.25).replace(" ", "").replace("B", "")
    raise NeuroDeployError(f"{what} needs about {format_size(estimate)} of memory (estimate), more than the "
                           f"{format_size(bound)} {source}; {lower}, or raise the limit with "
                           f"`neuro-deploy --max-memory {suggestion} ...`")
