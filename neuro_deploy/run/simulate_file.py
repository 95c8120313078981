"""`simulate` on files, for the command line and scripts alike: check the paths, read the network and
its input, run it, write the outputs, and return what the run gave (metrics, energy, files written)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from neuro_deploy.backends.lava import TORCH_CONV
from neuro_deploy.common.atomic import atomic_path, check_inputs, check_outputs
from neuro_deploy.data import evaluate, image_format, read_image, write_image
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx import read_network, tile_steps
from neuro_deploy.formats.network_file import NetworkFile
from neuro_deploy.ir.quantized import Drive
from neuro_deploy.run import simulate as sim
from neuro_deploy.run.overflow import summarize
from neuro_deploy.zoo.inference import OVERLAP, derain_array, float_model

Progress = Callable[..., None]
#: runs and prices a network: (network, input, back end, keep events, on_tile, **simulate's options) ->
#: (the simulation, its energy report); `neuro_deploy.energy.loihi2.priced_runner` makes one
Pricing = Callable[..., tuple[sim.Simulation, dict[str, Any]]]


@dataclass
class FileRun:
    """What `simulate` prints: `summary` (its JSON, the run's overflow under "overflow"), the energy
    report when priced, the files written."""

    summary: dict[str, Any]
    energy: dict[str, Any] | None = None
    written: list[str] = field(default_factory=list)


def energy_outputs(output: Path) -> tuple[Path, Path]:
    """Where a priced run's report and plot go: beside `output`, named after it (checked with it
    before the run, so a name that only its `_energy.json` pushes past the limit fails first)."""
    return output.with_name(f"{output.stem}_energy.json"), output.with_name(f"{output.stem}_energy.png")


def simulate_file(network: Path, input_path: Path, output: Path, *, target: Path | None = None,
                  backend: str = "fast", dump: Path | None = None, steps: int | None = None,
                  pricing: Pricing | None = None, lava_torch_conv: bool = False, device: str = "cpu",
                  skip: tuple[str, ...] = (), on_tile: Progress | None = None) -> FileRun:
    """A converted network derains an image (or .npy) into `output`; a plain netx file runs on an input
    array and writes its output layer's events. `dump`: every layer's events (.npz). `pricing`: count
    the run and price it (its profiles checked before the run)."""
    if lava_torch_conv:
        os.environ[TORCH_CONV] = "1"  # read by the Lava worker
    if dump is not None and dump.suffix != ".npz":
        raise NeuroDeployError(f"--dump {dump}: expected a .npz file name")
    sim.check_device(device, backend)
    check_outputs([output, dump, *(energy_outputs(output) if pricing is not None else ())],
                  [network, input_path, target])
    check_inputs([network, input_path])  # --target: read later, after the checks that it applies
    net = read_network(network, skip)
    if net.quantized.free_running:
        return _simulate_events(net, input_path, target, output, backend, dump, steps, pricing, on_tile)
    if steps is not None:
        raise NeuroDeployError("--steps applies to plain netx files; a converted network runs its own steps")
    return _simulate_image(net, input_path, target, output, backend, dump, pricing, device, on_tile)


def _run(net: NetworkFile, x: np.ndarray, backend: str, keep: bool, pricing: Pricing | None,
         on_tile: Progress | None, **options: Any) -> tuple[sim.Simulation, dict[str, Any] | None]:
    if pricing is None:
        return sim.simulate(net, x, backend, keep_events=keep, on_tile=on_tile, **options), None
    return pricing(net, x, backend, keep, on_tile, **options)


def _write_dump(dump: Path | None, result: sim.Simulation, written: list[str]) -> None:
    if dump is not None:
        with atomic_path(dump) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **result.events)
        written.append(f"{dump} ({len(result.events)} layer event arrays)")


def _simulate_image(net: NetworkFile, input_path: Path, target: Path | None, output: Path, backend: str,
                    dump: Path | None, pricing: Pricing | None, device: str, on_tile: Progress | None) -> FileRun:
    if output.suffix.lower() != ".npy":
        image_format(output)
    shape = net.meta["input_shape"]
    x = sim.read_input(input_path, shape[0], int(net.meta["settings"]["timesteps"]))
    clean = read_image(target) if target else None
    if clean is not None and clean.shape[:2] != x.shape[-2:]:
        raise NeuroDeployError(f"target {target} is {clean.shape[1]}x{clean.shape[0]}, input is "
                               f"{x.shape[-1]}x{x.shape[-2]}")
    sim.check_memory(net, int(net.meta["steps"]), dump is not None, backend)
    source = float_model(net.meta.get("source", {})) if x.ndim == 3 else None  # refused before any output
    result, energy = _run(net, x, backend, dump is not None, pricing, on_tile, device=device)
    reference = None if source is None else derain_array(source, x.transpose(1, 2, 0), tile=shape[-1], overlap=OVERLAP)
    if output.suffix.lower() == ".npy":
        with atomic_path(output) as tmp, open(tmp, "wb") as f:
            np.save(f, result.output.transpose(2, 0, 1).astype(np.float32))
    else:
        write_image(output, result.output)
    ran = tile_steps(net.quantized)  # what each tile ran (the metadata agrees, or the file was refused)
    written = [f"{output} ({result.tiles} tile(s) of {shape[1]}x{shape[2]}, {ran} steps each)"]
    _write_dump(dump, result, written)
    summary: dict[str, Any] = {"output": str(output), "tiles": result.tiles, "steps": ran}
    if clean is not None:
        summary["vs_target"] = evaluate(result.output, clean)
        if reference is not None:
            summary["float_vs_target"] = evaluate(reference, clean)
    if reference is not None:
        summary["vs_float_model"] = evaluate(result.output, reference)
    if energy is not None:
        summary["energy"] = energy
    summary["overflow"] = summarize(net.quantized, result.overflow)
    return FileRun(summary, energy, written)


def _simulate_events(net: NetworkFile, input_path: Path, target: Path | None, output: Path, backend: str,
                     dump: Path | None, steps: int | None, pricing: Pricing | None,
                     on_tile: Progress | None) -> FileRun:
    """A plain netx file: the output layer's events to .npy, all layers' to `dump`."""
    if target is not None:
        raise NeuroDeployError(f"--target applies to deraining networks; {net.path} is a plain netx file")
    if output.suffix.lower() != ".npy":
        raise NeuroDeployError(f"-o {output}: a plain netx file's output events go to a .npy file")
    x = sim.read_events(input_path, net)
    drive = Drive(sim.run_steps(net, x, steps))
    sim.check_memory(net, drive.steps, dump is not None, backend)
    result, energy = _run(net, x, backend, dump is not None, pricing, on_tile, drive=drive)
    with atomic_path(output) as tmp, open(tmp, "wb") as f:
        np.save(f, result.output)
    written = [f"{output} (output layer events {list(result.output.shape)}, {result.steps} steps)"]
    _write_dump(dump, result, written)
    summary = {"output": str(output), "steps": result.steps, "shape": list(result.output.shape),
               "events": int(np.count_nonzero(result.output)), **({"energy": energy} if energy else {}),
               "overflow": summarize(net.quantized, result.overflow)}
    return FileRun(summary, energy, written)
