"""How many local Ray workers this machine holds, decided before the instance starts: one worker
per core, and memory for every worker's runs (estimated from the network as `simulate` estimates
one run) beside the instance's own. More workers than that would share cores for nothing or be
killed by the kernel hours into an evaluation.
"""

from __future__ import annotations

import os
from pathlib import Path

from neuro_deploy import zoo
from neuro_deploy.backends.fast import run_bytes
from neuro_deploy.backends.lava import estimate_bytes
from neuro_deploy.common import memory
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.run.job import Job
from neuro_deploy.run.ray_local import LOCAL_OBJECT_STORE
from neuro_deploy.run.ray_pool import BATCH
from neuro_deploy.zoo.memory import inference_bytes

#: resident memory of a worker that has read the network and its float model, before any tile:
#: 555 MiB measured for the bundled deployable network at 16x16 (Python with torch and Ray)
WORKER_BYTES = 560 << 20
#: the instance's own processes (GCS, raylet, two agents, three helpers: 456 MiB measured) and
#: its object store
INSTANCE_BYTES = (460 << 20) + LOCAL_OBJECT_STORE


def cores() -> int:
    """The cores this process may use: one Ray worker each."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_bytes(job: Job) -> float:
    """One worker's peak: its base, a task's run of the network (a batch of tiles on the fast back
    end; one tile's Lava processes) and the float model's tile beside it."""
    q = job.net.quantized
    run = estimate_bytes(q, int(job.net.meta["steps"])) if job.backend == "lava" else BATCH * run_bytes(q)
    return WORKER_BYTES + run + _reference_bytes(job)


def _reference_bytes(job: Job) -> float:
    """The float model's forward on one tile, when its checkpoint is there (as `float_model` finds it)."""
    path = Path(job.net.meta.get("source", {}).get("path", ""))
    if not path.is_file():
        return 0.0
    ckpt = zoo.read_checkpoint(path)
    return inference_bytes(ckpt.arch, ckpt.config, (job.tile, job.tile))


def default_workers(job: Job) -> int:
    """A worker per core, as many as the memory limit holds (at least one)."""
    bound, _ = memory.limit()
    fit = cores() if bound is None else int((bound - INSTANCE_BYTES) // worker_bytes(job))
    return max(1, min(cores(), fit))


def check_workers(job: Job, workers: int) -> None:
    """Refuse, in one line, more local workers than the cores or the memory hold."""
    if workers > cores():
        raise NeuroDeployError(f"--workers {workers}: this machine gives this process {cores()} cores, one "
                               f"per Ray worker; give --workers {cores()} or fewer")
    each = worker_bytes(job)
    memory.check(INSTANCE_BYTES + workers * each, f"evaluate on {workers} local Ray workers "
                 f"({memory.format_size(each)} each)", "lower --workers")
