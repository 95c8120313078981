"""An evaluation spread over Ray: a local instance (`--workers N`) or an existing cluster
(`--address HOST:PORT`). Each worker is an actor that reads the network once; the driver cuts
every image into the tiles `simulate` would run, hands tiles (and the float model's image) to
whichever worker is free, and blends the results exactly as `simulate` does, so every number
equals a single-process run. The network and float model travel through Ray's object store, so
workers on other machines need neuro-deploy installed but not the files.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import ray
import torch
from ray.exceptions import RayTaskError

from neuro_deploy.backends.overflow import Overflow
from neuro_deploy.common.progress import Update
from neuro_deploy.common.tiling import tiled_apply
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx import read_network
from neuro_deploy.run.job import Finish, Job
from neuro_deploy.run.ray_local import QUIET, local_instance
from neuro_deploy.run.simulate import pad_to, run_tiles
from neuro_deploy.zoo.inference import MULTIPLE, OVERLAP, derain_array, float_model

#: tasks queued on each worker, so it starts the next as soon as one ends
DEPTH = 2
#: tiles of one image per task at most: fewer round trips, and the fast back end runs them in one batch
BATCH = 8
@contextlib.contextmanager
def connect(workers: int | None, address: str | None) -> Iterator[tuple[int, str | None]]:
    """Ray for one evaluation, yielding how many workers to start (`workers`, or one per CPU the
    cluster at `address` has free now: it is shared) and the folder for their copies of the
    network (a local instance's own; None on a cluster: the system's). A local instance ends with
    the evaluation; a cluster is only left."""
    environ = dict(os.environ)  # ray.init sets RAY_AUTH_MODE and others, which would outlive the evaluation
    try:
        with contextlib.ExitStack() as stack:
            try:
                if address is None:
                    scratch: str | None = str(stack.enter_context(local_instance(workers or 1)))
                else:
                    stack.callback(ray.shutdown)
                    ray.init(address=address, **QUIET)
                    scratch = None
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                raise NeuroDeployError(f"cannot start {where}: {str(exc).splitlines()[0]}") from None
            cpus = ray.cluster_resources().get("CPU", 0)
            if workers is not None and workers > cpus:  # its actors would wait forever for a CPU
                raise NeuroDeployError(f"--workers {workers}: the Ray cluster at {address} has {cpus:g} CPUs "
                                       f"in all; give --workers {int(cpus)} or fewer")
            yield workers or max(1, int(ray.available_resources().get("CPU", 1))), scratch
    finally:
        os.environ.clear()
        os.environ.update(environ)


@ray.remote(num_cpus=1)
class Worker:
    """One core's worker: reads the network (and float model) once, then runs tiles and references."""

    def __init__(self, blob: bytes, name: str, backend: str, model: torch.nn.Module | None, tile: int,
                 scratch: str | None) -> None:
        torch.set_num_threads(1)  # one core per worker; results do not depend on the thread count
        self._folder = tempfile.TemporaryDirectory(prefix="neuro_deploy_worker_", dir=scratch)
        if scratch is not None:  # a local instance: a killed worker's Lava run folders go with the instance's
            tempfile.tempdir = self._folder.name
        path = Path(self._folder.name) / name
        path.write_bytes(blob)  # Lava reads a file; a remote node may not have the driver's
        self.net, self.backend, self.model, self.size = read_network(path), backend, model, tile

    def ready(self) -> None:
        """Answers once the network is read: the end of the start-up, for the throughput figure."""

    def close(self) -> None:
        """Remove the network's copy on a cluster: Ray ends workers without running their finalizers
        (a local instance's folder goes with the instance)."""
        self._folder.cleanup()

    def tiles(self, tiles: torch.Tensor) -> tuple[torch.Tensor, Overflow]:
        return run_tiles(self.net, tiles, self.backend)

    def reference(self, rainy: np.ndarray) -> np.ndarray:
        return derain_array(self.model, rainy, tile=self.size, overlap=OVERLAP)


@dataclass
class _Image:
    """An image in flight: its padded input, the tiles' results and the float model's as they arrive."""

    name: str
    padded: torch.Tensor
    height: int
    width: int
    outputs: list[torch.Tensor | None]
    reference: np.ndarray | None = None
    overflow: Overflow = field(default_factory=Overflow)  # of the tiles back so far
    waiting: int = 0  # tasks (tile batches and the float model's image) not back yet
    batches: int = 1  # tasks in all

    def merged(self, size: int) -> np.ndarray:
        """The tiles blended and cropped as `simulate` blends them."""
        outputs = iter(self.outputs)
        merged = tiled_apply(lambda _: next(outputs), self.padded, tile=size, overlap=OVERLAP, multiple=MULTIPLE)
        return merged[0, :, :self.height, :self.width].clamp(0, 1).permute(1, 2, 0).numpy()


def split(rainy: np.ndarray, size: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """An HxWx3 image padded as `simulate` pads it, and the tiles `simulate` would run, in its order."""
    padded = pad_to(torch.from_numpy(np.ascontiguousarray(rainy.transpose(2, 0, 1)))[None], size)
    tiles: list[torch.Tensor] = []

    def collect(tile: torch.Tensor) -> torch.Tensor:
        tiles.append(tile.clone())
        return tile

    tiled_apply(collect, padded, tile=size, overlap=OVERLAP, multiple=MULTIPLE)
    return padded, tiles


def _get(ref: ray.ObjectRef) -> Any:
    """A task's result; a worker's bad-input error is the same one-line error as in this process."""
    try:
        return ray.get(ref)
    except RayTaskError as exc:
        if isinstance(exc.cause, NeuroDeployError):
            raise NeuroDeployError(str(exc.cause)) from None
        raise


@dataclass
class _Scheduler:
    """Keeps every worker `DEPTH` tasks deep, opening the next image only when tasks run short."""

    job: Job
    pending: list[str]
    workers: list[Any]
    with_reference: bool
    queue: deque = field(default_factory=deque)
    opened: dict[str, _Image] = field(default_factory=dict)
    inflight: dict[Any, tuple[int, str, int]] = field(default_factory=dict)
    done: int = 0

    def __post_init__(self) -> None:
        self.images = iter(self.pending)
        self.load = [0] * len(self.workers)

    def _open_next(self) -> bool:
        """Queue the next image's tiles, in batches small enough that every worker gets some."""
        name = next(self.images, None)
        if name is None:
            return False
        rainy, _ = self.job.pair(name)
        padded, tiles = split(rainy, self.job.tile)
        size = max(1, min(BATCH, -(-len(tiles) // len(self.workers))))
        image = _Image(name, padded, rainy.shape[0], rainy.shape[1], [None] * len(tiles))
        self.queue.extend((name, k, torch.cat(tiles[k:k + size])) for k in range(0, len(tiles), size))
        if self.with_reference:
            self.queue.append((name, -1, rainy))
        image.waiting = -(-len(tiles) // size) + self.with_reference
        image.batches = image.waiting
        self.opened[name] = image
        return True

    def _submit(self) -> None:
        while len(self.queue) < len(self.workers) * DEPTH and self._open_next():
            pass
        for w, worker in enumerate(self.workers):
            while self.load[w] < DEPTH and self.queue:
                name, k, payload = self.queue.popleft()
                ref = worker.reference.remote(payload) if k < 0 else worker.tiles.remote(payload)
                self.inflight[ref] = (w, name, k)
                self.load[w] += 1

    def progress(self) -> float:
        """Images done, plus the finished fraction of each open one."""
        return self.done + sum(1 - i.waiting / i.batches for i in self.opened.values())

    def run(self, finish: Finish, update: Update | None) -> None:
        self._submit()
        while self.inflight:
            (ref,), _ = ray.wait(list(self.inflight), num_returns=1)
            w, name, k = self.inflight.pop(ref)
            self.load[w] -= 1
            image = self.opened[name]
            if k < 0:
                image.reference = _get(ref)
            else:
                batch, overflow = _get(ref)
                image.outputs[k:k + len(batch)] = batch.split(1)
                image.overflow.add(overflow)
            image.waiting -= 1
            if not image.waiting:
                del self.opened[name]
                finish(name, image.merged(self.job.tile), image.reference, len(image.outputs), image.overflow)
                self.done += 1
            self._submit()
            if update is not None:
                update(self.progress(), len(self.pending), name)


def run_on_ray(job: Job, pending: list[str], finish: Finish, workers: int | None,
               update: Update | None) -> tuple[int, float]:
    """Evaluate `pending` on Ray workers, calling `finish` as each image completes; returns the
    number of workers and the seconds until all of them had read the network."""
    started = time.perf_counter()
    model = float_model(job.net.meta.get("source", {}))
    with connect(workers, job.address) as (count, scratch):
        blob, model_ref = ray.put(job.net_path.read_bytes()), ray.put(model)
        actors = [Worker.remote(blob, job.net_path.name, job.backend, model_ref, job.tile, scratch)
                  for _ in range(count)]
        try:
            ray.get([actor.ready.remote() for actor in actors])
            startup = time.perf_counter() - started
            _Scheduler(job, pending, actors, model is not None).run(finish, update)
        finally:  # on a cluster, after the tasks queued on them, also when one failed
            if scratch is None:
                ray.wait([actor.close.remote() for actor in actors], num_returns=len(actors), timeout=30)
    return count, startup
