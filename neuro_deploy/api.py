"""The public Python API: convert, save, load, simulate and price a network without the CLI.

    net = neuro_deploy.convert("vlifnet_small_deployable", size=16)   # a checkpoint path or a bundled name
    net.save("m.net"); net = neuro_deploy.load_network("m.net")
    result = net.simulate(image)            # HxWx3 in [0, 1] -> result.output (same shape), result.metrics
    report = net.energy(image, profiles=("loihi",))

Built on the modules the CLI runs (`convert`, `simulate`, `energy`), so both give the same numbers.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from neuro_deploy.common.atomic import check_outputs
from neuro_deploy.energy.profiles import DEFAULT_PROFILES
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.network_file import NetworkFile
from neuro_deploy.formats.netx import read_network, write_network

__all__ = ["Network", "SimulationResult", "convert", "evaluate", "load_network", "plan"]


@dataclass
class SimulationResult:
    """A fixed-point run on one image: the derained image and how close it is to references."""

    output: np.ndarray  # HxWx3 in [0, 1], the input's shape
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # "target" / "float" -> psnr, ssim, ...
    tiles: int = 0


class Network:
    """A network converted to Loihi fixed point, in memory or read from its `.net` file."""

    def __init__(self, file: NetworkFile) -> None:
        self._file = file

    def __repr__(self) -> str:
        where = self._file.path or "not saved"
        return f"Network({len(self._file.quantized.layers)} layers, input {self.input_shape}, {where})"

    @property
    def meta(self) -> dict[str, Any]:
        """What the file records: source checkpoint, settings, latency, steps, violations."""
        return self._file.meta

    @property
    def path(self) -> Path | None:
        return Path(self._file.path) if self._file.path else None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.meta["input_shape"])

    def quantization_report(self) -> list[dict[str, Any]]:
        """Per layer: weight exponents, clipped fraction, weight error, state peak and overflow."""
        from neuro_deploy.compile.convert import quantization_report

        return quantization_report(self._file.quantized)

    def save(self, path: str | Path) -> Path:
        """Write the HDF5 (netx) description; later Lava runs read this file."""
        path = _path_argument(path, "path")
        check_outputs([path], [self.meta.get("source", {}).get("path"), self._file.path or None])
        write_network(path, self._file.quantized, self.meta)
        self._file = NetworkFile(self._file.quantized, self.meta, str(path))
        return path

    def simulate(self, image: np.ndarray, backend: str = "fast", target: np.ndarray | None = None,
                 reference: bool = True) -> SimulationResult:
        """Derain an HxWx3 image in [0, 1] in fixed point. Metrics: PSNR/SSIM against `target` when
        given, and against the float model when `reference` and the source checkpoint is unchanged."""
        from neuro_deploy.data import evaluate
        from neuro_deploy.run.simulate import simulate
        from neuro_deploy.zoo.inference import float_reference

        x = self._image(image, "image")
        clean = None if target is None else self._image(target, "target")
        if clean is not None and clean.shape != x.shape:
            raise NeuroDeployError(f"target has shape {clean.shape[::-1]} but image has {x.shape[::-1]}")
        with _runnable(self._file, backend) as net:
            run = simulate(net, x, backend)
        metrics = {} if clean is None else {"target": evaluate(run.output, clean.transpose(1, 2, 0))}
        expected = float_reference(self.meta.get("source", {}), x, self.input_shape[-1]) if reference else None
        if expected is not None:
            metrics["float"] = evaluate(run.output, expected)
        return SimulationResult(run.output, metrics, run.tiles)

    def energy(self, image: np.ndarray, profiles: str | Path | Iterable[str | Path] | None = DEFAULT_PROFILES,
               backend: str = "fast") -> dict[str, Any]:
        """Count a run on an HxWx3 image and price it on hardware profiles (bundled names or TOML
        paths; one name alone, or None for the default ones): the report `neuro-deploy energy
        --format json` prints."""
        from neuro_deploy.counting.run import simulate_and_count
        from neuro_deploy.energy.loihi2 import priced_report
        from neuro_deploy.energy.profiles import load_profiles

        loaded = load_profiles(_profile_list(profiles))  # before the run: a typo fails at once
        x = self._image(image, "image")
        with _runnable(self._file, backend) as net:
            _, counts = simulate_and_count(net, x, backend)
            return priced_report(net, counts, loaded)

    def _image(self, image: np.ndarray, what: str) -> np.ndarray:
        """An HxWx3 array in [0, 1] as the `(C, H, W)` float32 the simulators take."""
        channels = self.input_shape[0]
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[-1] != channels or array.dtype.kind not in "fiu" or array.size == 0:
            raise NeuroDeployError(f"{what} must be a non-empty HxWx{channels} numeric array, got shape {array.shape} "
                                   f"of {array.dtype}")
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise NeuroDeployError(f"{what} must hold values in [0, 1]")
        return np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32)


@contextlib.contextmanager
def _runnable(file: NetworkFile, backend: str) -> Iterator[NetworkFile]:
    """The network as the back end needs it: Lava reads a file, so an unsaved network is written
    to a temporary one for the run."""
    if backend != "lava" or file.path:
        yield file
        return
    with tempfile.TemporaryDirectory(prefix="neuro_deploy_") as folder:
        path = str(Path(folder) / "network.net")
        write_network(path, file.quantized, file.meta)
        yield NetworkFile(file.quantized, file.meta, path)


def convert(checkpoint: str | Path, **options: Any) -> Network:
    """Quantize a checkpoint (a path, or a bundled model's name such as `vlifnet_small_deployable`)
    to Loihi fixed point. Options are `neuro_deploy.compile.convert.convert`'s: arch, calibrate, size,
    timesteps, strict, headroom, payload_bits, allow_violations."""
    from neuro_deploy.compile.convert import convert as run_conversion

    _check_options(_path_argument(checkpoint, "checkpoint"), options)
    result = run_conversion(checkpoint, **options)
    return Network(NetworkFile(result.quantized, result.meta, ""))


def load_network(path: str | Path) -> Network:
    """Read a `.net` file written by `neuro-deploy convert` or `Network.save`."""
    return Network(read_network(_path_argument(path, "path")))


def plan(path: str | Path, skip_first: int = 0, board: str | None = None, chips: int | None = None,
         input_path: str | Path | None = None) -> dict[str, Any]:
    """The Loihi 2 deployment plan of a network file (`neuro-deploy plan --format json`'s object):
    cores per layer, chips, whether `board` (or `chips`) holds it, time per step and per image."""
    from neuro_deploy.deploy.plan import plan as make_plan

    return make_plan(_path_argument(path, "path"), skip_first, board, chips, input_path).to_json()


def evaluate(network: str | Path, data: str | Path, backend: str = "fast", workers: int | None = None,
             address: str | None = None, output: str | Path | None = None) -> dict[str, Any]:
    """Score a network file on a paired dataset (`data/input`, `data/target`), every image in fixed
    point, in this process (`workers=1`), on a local Ray instance, or on the cluster at `address`:
    `neuro-deploy evaluate --net --format json`'s document (`images`, `mean`) with the run's overflow.
    `output`: a results file (.json or .csv) rewritten as images complete, resumed when it exists."""
    from neuro_deploy.run.evaluate import evaluate_network
    from neuro_deploy.run.overflow import summarize

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise NeuroDeployError(f"workers must be a positive integer, got {workers!r}")
    out = None if output is None else _path_argument(output, "output")
    job, results, stats = evaluate_network(_path_argument(network, "network"), _path_argument(data, "data"),
                                           backend, workers, address, out, "csv" if out and out.suffix.lower() == ".csv"
                                           else "json")
    return {**results.document(), "overflow": summarize(job.net.quantized, stats.overflow)}


# ---- arguments checked at the boundary ---------------------------------------------------------------

#: `convert`'s options and the types each takes (bool is refused where a number is meant)
OPTIONS: dict[str, tuple[type, ...]] = {
    "arch": (str,), "calibrate": (str, os.PathLike), "size": (int,), "timesteps": (int,), "strict": (bool,),
    "headroom": (int, float), "payload_bits": (int,), "allow_violations": (bool,)}


def _path_argument(value: Any, name: str) -> Path:
    """`value` as a path, or an error naming the argument: `Path(None)` or `Path(5)` would fail
    deep inside with a TypeError about `os.fspath`."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise NeuroDeployError(f"{name} must be a file path (str or os.PathLike), got {value!r}")
    return Path(value)


def _check_options(checkpoint: Path, options: dict[str, Any]) -> None:
    """Each `convert` option known and of its type (`timesteps="4"` would fail mid-way on a comparison)."""
    for name, value in options.items():
        if name not in OPTIONS:
            raise NeuroDeployError(f"convert({checkpoint}): unknown option {name!r} (options: {', '.join(OPTIONS)})")
        types = OPTIONS[name]
        none_allowed = name in ("arch", "calibrate", "timesteps")
        wrong_bool = isinstance(value, bool) and bool not in types
        if (value is None and not none_allowed) or (value is not None and (wrong_bool or not isinstance(value, types))):
            expected = " or ".join(t.__name__ for t in types)
            raise NeuroDeployError(f"convert({checkpoint}): {name} must be {expected}, got {value!r}")


def _profile_list(profiles: Any) -> list[str | Path]:
    """One profile name or path alone, a list of them, or None for the defaults: `list("loihi")`
    would otherwise ask for the profiles 'l', 'o', 'i'..."""
    if profiles is None:
        return list(DEFAULT_PROFILES)
    if isinstance(profiles, (str, os.PathLike)):
        return [profiles]
    items = list(profiles) if isinstance(profiles, Iterable) else None
    if items is None or not all(isinstance(p, (str, os.PathLike)) for p in items):
        raise NeuroDeployError(f"profiles must be a profile name or path, or a list of them, got {profiles!r}")
    return items
