"""A deployed network's quality over a paired dataset: PSNR/SSIM (RGB and Y) of every image, beside
the rainy input and the float model the network came from, so a lab sees what deraining gained and
what fixed point lost on its whole test set.

Everything that could make the run fail for bad input (the network, the dataset, the results file,
the cluster's address) is checked by `prepare` before any image is simulated. Results are kept in a
file rewritten atomically after each image, so an interrupted evaluation resumes where it stopped.
Images run in this process or on Ray workers (`neuro_deploy.run.ray_pool`), with the same numbers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from neuro_deploy.backends.overflow import Overflow
from neuro_deploy.common.atomic import atomic_path, check_outputs
from neuro_deploy.common.progress import Update
from neuro_deploy.data import PairedDataset, evaluate
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.network_file import NetworkFile
from neuro_deploy.formats.netx import read_network
from neuro_deploy.run.job import Finish, Job
from neuro_deploy.run.simulate import BACKENDS, simulate
from neuro_deploy.zoo.inference import OVERLAP, derain_array, float_model

METRICS = ("psnr", "ssim", "psnr_y", "ssim_y")
#: per image: the network, the rainy input and the float model against the clean target, and the
#: network against the float model (what quantization lost); each prefixes its four columns
GROUPS = ("", "input_", "float_", "vs_float_")
METRIC_COLUMNS = tuple(prefix + m for prefix in GROUPS for m in METRICS)
SIZE_COLUMNS = ("width", "height", "tiles")
#: per image, the values its run wrapped or saturated (neuro_deploy.run.overflow)
COUNT_COLUMNS = (*SIZE_COLUMNS, "overflow")
COLUMNS = ("name", *SIZE_COLUMNS, *METRIC_COLUMNS, "overflow", "backend", "network_sha256")
FILE_FORMATS = (".json", ".csv")

def check_tileable(net: NetworkFile, path: Path) -> None:
    """Refuse a network whose input shape RGB images cannot be tiled into, before any image is read."""
    if net.quantized.free_running:
        raise NeuroDeployError(f"{path} is a plain netx network; evaluate takes a deraining network "
                               "written by `neuro-deploy convert`")
    shape = tuple(int(v) for v in net.meta["input_shape"])
    if len(shape) != 3 or shape[0] != 3:
        raise NeuroDeployError(f"{path} takes inputs of shape {list(shape)}; the dataset's images are RGB [3, H, W]")
    if shape[1] != shape[2] or shape[1] % 8 or shape[1] <= OVERLAP:
        raise NeuroDeployError(f"{path} takes {shape[2]}x{shape[1]} inputs, which images cannot be tiled into "
                               f"(tiles are square, a multiple of 8 and larger than the {OVERLAP}-pixel overlap)")


def _size(path: Path) -> tuple[int, int]:
    """An image's (width, height) from its header: the whole set is checked in seconds."""
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise NeuroDeployError(f"cannot read image {path}: {exc}") from None


def check_pairs(data: PairedDataset) -> None:
    """Every rainy image readable and the size of its clean one; found now, not hours into a run."""
    for name in data.names:
        rainy, clean = _size(data.input_dir / name), _size(data.target_dir / name)
        if rainy != clean:
            raise NeuroDeployError(f"{data.input_dir / name} is {rainy[0]}x{rainy[1]} but "
                                   f"{data.target_dir / name} is {clean[0]}x{clean[1]}")


def prepare(net_path: Path, data_root: Path, backend: str, address: str | None = None) -> Job:
    """The network, the dataset and the cluster's address, checked before any work (or Ray) starts."""
    if backend not in BACKENDS:
        raise NeuroDeployError(f"unknown back end {backend!r} (known: {', '.join(BACKENDS)})")
    net = read_network(net_path)
    check_tileable(net, net_path)
    data = PairedDataset(data_root)
    check_pairs(data)
    if address is not None:
        from neuro_deploy.run.ray_address import check_reachable

        check_reachable(address)
    sha256 = hashlib.sha256(Path(net_path).read_bytes()).hexdigest()  # what a results file to resume must match
    return Job(Path(net_path), net, data, backend, sha256, address)


def score(name: str, rainy: np.ndarray, clean: np.ndarray, output: np.ndarray, reference: np.ndarray | None,
          tiles: int, overflow: int = 0) -> dict[str, Any]:
    """One image's record: its size, tiles, the values its run wrapped or saturated (`overflow`) and
    every group's four metrics."""
    pairs = {"": (output, clean), "input_": (rainy, clean)}
    if reference is not None:
        pairs.update({"float_": (reference, clean), "vs_float_": (output, reference)})
    record: dict[str, Any] = {"name": name, "width": int(rainy.shape[1]), "height": int(rainy.shape[0]),
                              "tiles": tiles, "overflow": overflow}
    for prefix, (pred, target) in pairs.items():
        record.update({prefix + k: v for k, v in evaluate(pred, target).items()})
    return record


def mean(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Each metric's mean over the images where it is finite (SSIM is NaN on images below its window)."""
    result: dict[str, Any] = {"images": len(records)}
    for key in METRIC_COLUMNS:
        values = [r[key] for r in records if key in r and math.isfinite(r[key])]
        if values:
            result[key] = float(np.mean(values))
    return result


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


@dataclass
class Results:
    """The per-image results of one network on one back end, and the file that keeps them."""

    job: Job
    path: Path | None = None
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    resumed: int = 0

    @classmethod
    def open(cls, job: Job, path: Path | None, fmt: str) -> Results:
        """Results to add to `path` (.json or .csv); a file there from an earlier run of the same
        network and back end on this dataset gives the images it already holds."""
        if path is None:
            return cls(job)
        suffix = path.suffix.lower()
        if suffix not in FILE_FORMATS:
            raise NeuroDeployError(f"-o {path}: expected a .json or .csv file name")
        if fmt in ("json", "csv") and suffix != f".{fmt}":
            raise NeuroDeployError(f"--format {fmt} conflicts with -o {path}; name the file .{fmt}")
        check_outputs([path], [job.net_path, job.data.root])
        records = cls._read(path, job) if path.exists() else {}
        return cls(job, path, records, len(records))

    @staticmethod
    def _read(path: Path, job: Job) -> dict[str, dict[str, Any]]:
        """An earlier run's records, refused when they belong to another network, back end or dataset."""
        try:
            text = path.read_text()
            if path.suffix.lower() == ".json":
                document = json.loads(text)
                rows = [{**r, "backend": document["backend"], "network_sha256": document["network_sha256"]}
                        for r in document["images"]]
            else:
                rows = [r for r in csv.DictReader(io.StringIO(text)) if r["name"] != "mean"]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise NeuroDeployError(f"cannot resume from {path}: not a results file of evaluate ({exc})") from None
        records, names = {}, set(job.data.names)
        for row in rows:
            if (row.get("network_sha256"), row.get("backend")) != (job.sha256, job.backend):
                raise NeuroDeployError(f"{path} holds results of another network or back end; "
                                       "give another -o, or remove it to start over")
            if row.get("name") not in names:
                raise NeuroDeployError(f"{path} holds {row.get('name')!r}, which is not in {job.data.root}; "
                                       "give another -o, or remove it to start over")
            records[row["name"]] = _parse(row)
        return records

    def add(self, record: dict[str, Any]) -> None:
        """Keep one image's record and rewrite the file, so a crash loses at most the images in flight."""
        self.records[record["name"]] = record
        if self.path is not None:
            with atomic_path(self.path) as tmp:
                tmp.write_text(self.render(self.path.suffix.lower()[1:]))

    def ordered(self) -> list[dict[str, Any]]:
        """The records in the dataset's order, whatever order the workers finished them in."""
        return [self.records[n] for n in self.job.data.names if n in self.records]

    def document(self) -> dict[str, Any]:
        records = self.ordered()
        return {"network": str(self.job.net_path), "network_sha256": self.job.sha256, "backend": self.job.backend,
                "data": str(self.job.data.root),
                "images": [{k: _finite_or_none(v) for k, v in r.items()} for r in records],
                "mean": {k: _finite_or_none(v) for k, v in mean(records).items()}}

    def render(self, fmt: str) -> str:
        """The results as JSON (`{"images": [...], "mean": {...}}` and the run's provenance) or CSV
        (one row per image, then a `mean` row)."""
        if fmt == "json":
            return json.dumps(self.document(), indent=1) + "\n"
        provenance = {"backend": self.job.backend, "network_sha256": self.job.sha256}
        out = io.StringIO()
        writer = csv.DictWriter(out, COLUMNS, restval="", extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for record in self.ordered():
            writer.writerow({**record, **provenance})
        writer.writerow({**mean(self.ordered()), "name": "mean", **provenance})
        return out.getvalue()


def _parse(row: dict[str, Any]) -> dict[str, Any]:
    """A record read back as it was written (floats round-trip through repr): a missing group (no
    float model) stays missing, a non-finite value (JSON null) is NaN again."""
    record: dict[str, Any] = {"name": row["name"]}
    for key in (*COUNT_COLUMNS, *METRIC_COLUMNS):
        if key not in row or row[key] == "":
            continue
        record[key] = int(row[key]) if key in COUNT_COLUMNS else math.nan if row[key] is None else float(row[key])
    return record


@dataclass
class Stats:
    """What a run did now (resumed images excluded), for the images-per-second figure."""

    images: int
    seconds: float
    workers: int
    startup: float = 0.0  # of `seconds`: until every Ray worker had read the network
    overflow: Overflow = field(default_factory=Overflow)  # of the images run now, all summed


def run(job: Job, results: Results, workers: int | None = None, update: Update | None = None) -> Stats:
    """Evaluate the images `results` lacks: in this process with one worker and no cluster,
    else on Ray; each image is recorded (and the file rewritten) as soon as it is done."""
    pending = [n for n in job.data.names if n not in results.records]
    if not pending:
        return Stats(0, 0.0, 0)

    overflow = Overflow()

    def finish(name: str, output: np.ndarray, reference: np.ndarray | None, tiles: int, lost: Overflow) -> None:
        overflow.add(lost)
        results.add(score(name, *job.pair(name), output, reference, tiles, lost.total))

    if job.address is None and workers != 1:  # a local instance: as many workers as the machine holds
        from neuro_deploy.run.ray_capacity import check_workers, default_workers

        if workers is None:
            workers = default_workers(job)
        else:
            check_workers(job, workers)
    started, startup = time.perf_counter(), 0.0
    if workers == 1 and job.address is None:
        _run_here(job, pending, finish, update)
    else:
        from neuro_deploy.run.ray_pool import run_on_ray

        workers, startup = run_on_ray(job, pending, finish, workers, update)
    return Stats(len(pending), time.perf_counter() - started, workers, startup, overflow)


def evaluate_network(net_path: Path, data_root: Path, backend: str = "fast", workers: int | None = None,
                     address: str | None = None, output: Path | None = None, fmt: str = "json",
                     update: Update | None = None) -> tuple[Job, Results, Stats]:
    """`evaluate --net` and `neuro_deploy.api.evaluate`: check the network and the dataset, then score
    every image `output` (a results file, resumed when it exists) does not hold yet."""
    job = prepare(net_path, data_root, backend, address)
    results = Results.open(job, output, fmt)
    return job, results, run(job, results, workers, update)


def _run_here(job: Job, pending: list[str], finish: Finish, update: Update | None) -> None:
    """One image after another in this process, exactly as `neuro-deploy simulate` runs each."""
    model = float_model(job.net.meta.get("source", {}))
    for k, name in enumerate(pending):
        rainy, _ = job.pair(name)
        x = np.ascontiguousarray(rainy.transpose(2, 0, 1))

        def on_tile(done: int, total: int) -> None:
            if update is not None:
                update(k + done / total, len(pending), name)

        result = simulate(job.net, x, job.backend, on_tile=on_tile)
        reference = None if model is None else derain_array(model, rainy, tile=job.tile, overlap=OVERLAP)
        finish(name, result.output, reference, result.tiles, result.overflow)


def summary(document: dict[str, Any]) -> list[tuple[str, dict[str, float | None]]]:
    """(label, four mean metrics) per group present, in the order a reader compares them."""
    average = document["mean"]
    labels = {"input_": "rainy input", "float_": "float model", "": document["backend"],
              "vs_float_": f"{document['backend']} vs float"}
    return [(label, {m: average.get(prefix + m) for m in METRICS})
            for prefix, label in labels.items() if prefix + "psnr" in average]
