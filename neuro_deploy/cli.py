"""The `neuro-deploy` command line.

Every command reports bad input as one line on stderr and a non-zero exit; set
NEURO_DEPLOY_DEBUG=1 to see tracebacks.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from neuro_deploy import resources
from neuro_deploy.atomic import atomic_path, check_inputs, check_outputs
from neuro_deploy.energy.profiles import DEFAULT_PROFILES
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.progress import progress
ASSETS = Path(__file__).resolve().parent / "assets"
MODELS = resources.models_folder()
BUNDLED_MODEL = MODELS / "vlifnet_small.pt"
BUNDLED_DEPLOYABLE = MODELS / "vlifnet_small_deployable.pt"

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _console() -> Console:
    """Tables at full width in logs and pipes, where rich would otherwise assume 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def _int_list(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None


def _typed_options() -> set[str]:
    """The current command's parameters given on the command line (not defaults)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    return {name for name in ctx.params if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}


def _json(data: object) -> str:
    """JSON for scripts: plain floats rounded to 6 significant digits, no float noise."""
    import json

    def clean(value: object) -> object:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, (float, np.floating)):  # JSON has no NaN or Infinity
            return float(f"{float(value):.6g}") if np.isfinite(value) else None
        return value.item() if isinstance(value, np.generic) else value
    return json.dumps(clean(data), indent=1)


def _format_metrics(scores: dict[str, float]) -> str:
    return (f"PSNR {scores['psnr']:.2f} dB  SSIM {scores['ssim']:.4f}  "
            f"(Y channel: PSNR {scores['psnr_y']:.2f} dB  SSIM {scores['ssim_y']:.4f})")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neuro-deploy")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no notes of files written; results and errors only.")
@click.option("-v", "--verbose", is_flag=True,
              help="A progress line for every step in logs, and the traceback of an internal error.")
@click.option("--max-memory", metavar="SIZE",
              help="Refuse runs estimated to need more memory than this (e.g. 40G; 0: no limit) "
                   "[default: 90% of the memory available; env NEURO_DEPLOY_MAX_MEMORY].")
def cli(quiet: bool, verbose: bool, max_memory: str | None) -> None:
    """Deploy trained spiking (VLIF) deraining networks to Loihi fixed point.

    Bad input is one line on stderr and exit 2, an internal error exit 1. Shell completion:
    eval "$(_NEURO_DEPLOY_COMPLETE=bash_source neuro-deploy)" (zsh_source, fish_source)."""
    from neuro_deploy import memory
    from neuro_deploy import progress as progress_module

    if quiet and verbose:
        raise click.UsageError("-q and -v contradict each other")
    progress_module.verbosity = -1 if quiet else int(verbose)
    memory.override = None
    if max_memory is not None:
        memory.parse_size(max_memory)
        memory.override = max_memory


def _note(text: str, err: bool = False) -> None:
    """A note on what was written: on stderr when stdout carries JSON (`err`), nothing with -q."""
    from neuro_deploy import progress as progress_module

    if progress_module.verbosity >= 0:
        click.echo(text, err=err)


@cli.command()
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path),
              help="Checkpoint (.pt/.pth) or a bundled model's name (e.g. vlifnet_small_deployable).")
@click.option("--arch", type=click.Choice(["vlifnet", "esdnet"]), help="Architecture (inferred when omitted).")
@click.option("--input", "input_path", required=True, type=click.Path(path_type=Path), help="Rainy image.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Derained image to write.")
@click.option("--target", type=click.Path(path_type=Path), help="Clean image: print PSNR/SSIM against it.")
@click.option("--tile", default=80, show_default=True, help="Tile size of the tiled inference.")
@click.option("--overlap", default=8, show_default=True, help="Overlap between tiles.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics (with --target) as a JSON object.")
def derain(model_path: Path, arch: str | None, input_path: Path, output: Path, target: Path | None,
           tile: int, overlap: int, as_json: bool = False) -> None:
    """Derain an image with the float PyTorch model (tiled, any size)."""
    from neuro_deploy import memory, zoo
    from neuro_deploy.data import evaluate, image_format, read_image, write_image
    from neuro_deploy.inference import derain_array
    from neuro_deploy.tiling import tile_shape

    if tile % 8 or tile <= overlap or overlap < 0:
        raise NeuroDeployError(f"--tile must be a multiple of 8 larger than --overlap >= 0 (got {tile}, {overlap})")
    image_format(output)
    check_outputs([output], [model_path, input_path, target])
    check_inputs([input_path, target])
    ckpt = zoo.read_checkpoint(model_path, arch)
    zoo.check_config(ckpt)
    rainy = read_image(input_path)
    clean = read_image(target) if target else None
    if clean is not None and clean.shape != rainy.shape:
        raise NeuroDeployError(f"target {target} is {clean.shape[1]}x{clean.shape[0]}, "
                               f"input {input_path} is {rainy.shape[1]}x{rainy.shape[0]}")
    h, w = tile_shape(rainy.shape[0], rainy.shape[1], tile)
    memory.check(memory.inference_bytes(ckpt.arch, ckpt.config, (h, w)), f"derain with {h}x{w} tiles", "lower --tile")
    model = zoo.build_from(ckpt)
    with progress("derain") as update:
        result = derain_array(model, rainy, tile, overlap, on_tile=update)
    write_image(output, result)
    _note(f"wrote {output}", err=as_json)
    scores = {"output": str(output)}
    if clean is not None:
        scores.update(input=evaluate(rainy, clean), derained=evaluate(result, clean))
    if as_json:
        click.echo(_json(scores))
    elif clean is not None:
        click.echo(f"rainy input : {_format_metrics(scores['input'])}")
        click.echo(f"derained    : {_format_metrics(scores['derained'])}")


@cli.command()
@click.option("--model", "model_path", type=click.Path(path_type=Path), help="Float checkpoint to score.")
@click.option("--net", "net_path", type=click.Path(path_type=Path),
              help="Deployed network (.net from convert) to score in fixed point, beside its float model.")
@click.option("--arch", type=click.Choice(["vlifnet", "esdnet"]))
@click.option("--data", "data_root", required=True, type=click.Path(path_type=Path),
              help="Paired dataset root with input/ and target/.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as a JSON object.")
@click.option("--backend", type=click.Choice(["fast", "lava"]), default="fast", show_default=True,
              help="--net: the fixed-point back end.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="--net: the mean as a table, or every image's results as JSON or CSV.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="--net: per-image results (.json or .csv), rewritten as images complete; rerun to resume.")
@click.option("--workers", type=click.IntRange(min=1),
              help="--net: Ray workers [default: one per core here, or per free CPU of the --address cluster]; "
                   "1 runs in this process.")
@click.option("--address", metavar="HOST:PORT", help="--net: run on the existing Ray cluster with this head node.")
def evaluate(model_path: Path | None, net_path: Path | None, arch: str | None, data_root: Path, as_json: bool,
             backend: str, fmt: str, output: Path | None, workers: int | None, address: str | None) -> None:
    """Mean PSNR/SSIM of a float model (--model) or a deployed network (--net, per image, on Ray
    workers) on a paired dataset, next to the rainy-input baseline."""
    from neuro_deploy import zoo
    from neuro_deploy.train import validate

    if (model_path is None) == (net_path is None):
        raise NeuroDeployError("give --model CKPT (a float model) or --net NET (a deployed network)")
    if net_path is not None:
        _evaluate_net(net_path, data_root, backend, "json" if as_json else fmt, output, workers, address)
        return
    net_only = _typed_options() & {"backend", "fmt", "output", "workers", "address"}
    if net_only:
        raise NeuroDeployError(f"--{sorted(net_only)[0].replace('fmt', 'format')} applies to --net")
    with progress("evaluate") as update:
        scores = validate(zoo.load(model_path, arch), str(data_root), on_image=update)
    if as_json:
        click.echo(_json(scores))
        return
    for who in ("input", "model"):
        click.echo(f"{who:6s}: " + _format_metrics({k: scores[f'{who}_{k}'] for k in ('psnr', 'ssim', 'psnr_y', 'ssim_y')}))
    click.echo(f"({scores['images']} images)")


def _evaluate_net(net_path: Path, data_root: Path, backend: str, fmt: str, output: Path | None,
                  workers: int | None, address: str | None) -> None:
    """`evaluate --net`: every image in fixed point, in this process or on Ray, resumable from -o."""
    from neuro_deploy import evaluate_net

    job = evaluate_net.prepare(net_path, data_root, backend, address)
    results = evaluate_net.Results.open(job, output, fmt)
    with progress(f"evaluate ({backend})") as update:
        stats = evaluate_net.run(job, results, workers, update)
    machine = "resumed: nothing left to run" if not stats.images else (
        f"{stats.images} images in {stats.seconds:.1f} s on {stats.workers} worker(s), "
        f"{stats.startup:.1f} s of it starting Ray: {stats.images / stats.seconds:.3f} images/s")
    if output is not None:
        _note(f"wrote {output} ({len(results.records)} images; {results.resumed} resumed)", err=fmt != "table")
    if fmt != "table" and output is None:
        click.echo(results.render(fmt), nl=False)
        _note(machine, err=True)
        return
    for label, scores in evaluate_net.summary(results.document()):
        click.echo(f"{label:16s}: " + _format_metrics({k: float("nan") if v is None else v for k, v in scores.items()}))
    click.echo(f"({len(results.records)} images; {machine})")


@cli.command("synth-rain")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Dataset root to write.")
@click.option("-n", "count", default=100, show_default=True, help="Number of image pairs.")
@click.option("--preset", default="light", show_default=True, help="Rain preset: light (Rain200L-like) or heavy.")
@click.option("--size", default=64, show_default=True, help="Crop size in pixels.")
@click.option("--seed", default=0, show_default=True)
@click.option("--split", default="train", show_default=True, type=click.Choice(["train", "test"]),
              help="Source images: the training ones or the held-out ones.")
@click.option("--force", is_flag=True, help="Write into a folder that already holds files (pairs of the same "
                                            "names are replaced).")
def synth_rain(output: Path, count: int, preset: str, size: int, seed: int, split: str, force: bool) -> None:
    """Write a seeded synthetic rain dataset (<root>/input, <root>/target) from bundled clean images,
    into a new or empty folder; each pair appears whole."""
    from neuro_deploy.data import make_synthetic_rain

    with progress("synth-rain") as update:
        paths = make_synthetic_rain(output, count, preset=preset, size=size, seed=seed, split=split, force=force,
                                    on_pair=update)
    _note(f"wrote {len(paths)} pairs under {output}")


@cli.command()
@click.option("--arch", default="vlifnet", show_default=True, type=click.Choice(["vlifnet", "esdnet"]))
@click.option("--dim", default=8, show_default=True)
@click.option("--en", "en_blocks", default="1,1,1,1", show_default=True, help="Encoder blocks per level.")
@click.option("--de", "de_blocks", default="1,1,1,1", show_default=True, help="Decoder blocks per level.")
@click.option("--T", "timesteps", default=4, show_default=True, help="Time steps.")
@click.option("--refinement/--no-refinement", default=False, help="VLIFNet's 4 refinement blocks.")
@click.option("--deployable", is_flag=True,
              help="VLIFNet without attention gates and Hadamard products: all of it runs on neurocores.")
@click.option("--data", "data_root", required=True, type=click.Path(path_type=Path), help="Paired training set.")
@click.option("--val", "val_root", type=click.Path(path_type=Path), help="Paired held-out set, scored at the end.")
@click.option("--steps", default=1000, show_default=True)
@click.option("--batch-size", default=12, show_default=True)
@click.option("--crop", default=64, show_default=True)
@click.option("--lr", default=1e-3, show_default=True)
@click.option("--warmup", "warmup_steps", default=50, show_default=True, help="Linear warm-up steps.")
@click.option("--seed", default=0, show_default=True)
@click.option("--save-every", default=100, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="Torch device for the training steps (cpu, cuda).")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Checkpoint to write.")
@click.option("--resume", type=click.Path(path_type=Path), help="Checkpoint of an interrupted run.")
@click.option("--init", "init_path", type=click.Path(path_type=Path),
              help="Start from this checkpoint's matching weights (e.g. --deployable from the float model).")
def train(arch: str, dim: int, en_blocks: str, de_blocks: str, timesteps: int, refinement: bool, deployable: bool,
          data_root: Path,
          val_root: Path | None, steps: int, batch_size: int, crop: int, lr: float, warmup_steps: int, seed: int,
          save_every: int, device: str, output: Path, resume: Path | None, init_path: Path | None) -> None:
    """Train a zoo network with the paper's recipe (1-SSIM, AdamW, warm-up + cosine, 64x64 crops)."""
    from neuro_deploy.train import TrainConfig, resumed_architecture
    from neuro_deploy.train import train as run_training

    model = {"dim": dim, "en_num_blocks": _int_list(en_blocks), "de_num_blocks": _int_list(de_blocks), "T": timesteps}
    if arch == "vlifnet":
        model["use_refinement"] = refinement
        if deployable:
            model.update(attention=False, enhance_product=False)
    elif deployable:
        raise NeuroDeployError("--deployable applies to vlifnet only")
    if resume is not None:  # the checkpoint's architecture; options typed on the command line must agree
        typed = _typed_options()
        given = {key: model[key] for option, key in (("dim", "dim"), ("en_blocks", "en_num_blocks"),
                                                     ("de_blocks", "de_num_blocks"), ("timesteps", "T"),
                                                     ("refinement", "use_refinement"))
                 if option in typed and key in model}
        given.update({k: model[k] for k in ("attention", "enhance_product") if "deployable" in typed and k in model})
        arch, model = resumed_architecture(resume, arch if "arch" in typed else None, given)
    check_outputs([output], [data_root, val_root, init_path])  # -o may be --resume: it continues that file
    cfg = TrainConfig(arch=arch, model=model, data=str(data_root), steps=steps, batch_size=batch_size, crop=crop,
                      lr=lr, warmup_steps=warmup_steps, seed=seed, save_every=save_every,
                      val=str(val_root) if val_root else None, init=str(init_path) if init_path else None,
                      device=device)
    with progress("train") as update:
        ckpt = run_training(cfg, output, resume,
                            on_step=lambda step, loss, lr_now: update(step, steps, f"loss {loss:.4f} lr {lr_now:.2e}"))
    _note(f"wrote {output} after {ckpt.meta['steps_done']} steps ({ckpt.meta['train_time_s']} s)")
    if init_path is not None and "init" in ckpt.meta:
        i = ckpt.meta["init"]
        click.echo(f"started from {init_path}: {i['matched']} of {i['tensors']} weight tensors matched "
                   f"({i['parameters']} of {i['of_parameters']} values)")
    if "validation" in ckpt.meta:
        v = ckpt.meta["validation"]
        click.echo(f"held-out: input PSNR {v['input_psnr']:.2f} dB -> model {v['model_psnr']:.2f} dB, "
                   f"SSIM {v['input_ssim']:.4f} -> {v['model_ssim']:.4f}")


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--arch", type=click.Choice(["vlifnet", "esdnet"]), help="Architecture (inferred when omitted).")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Network description (.net).")
@click.option("--calibrate", type=click.Path(path_type=Path),
              help="Image or folder of images for the quantization ranges (default: the bundled images).")
@click.option("--timesteps", type=int, help="Time steps T (default: the checkpoint's).")
@click.option("--size", default=64, show_default=True, help="Image tile size the network is built for.")
@click.option("--strict", is_flag=True, help="Refuse ops without a neurocore equivalent instead of placing them on the host.")
@click.option("--headroom", default=2.0, show_default=True, help="Margin over the calibration peaks.")
@click.option("--payload-bits", default=12, show_default=True,
              help="Width of the graded payloads that synapses read (their sums must fit Loihi's accumulators).")
@click.option("--allow-violations", is_flag=True,
              help="Write the file even where it breaks Loihi's limits (listed in the file and by inspect).")
@click.option("--json", "as_json", is_flag=True, help="Print the quantization report as a JSON object.")
@click.option("--dt", type=float, help="NIR graph: the time step in seconds (default: the graph's metadata, else 1e-4).")
def convert(checkpoint: Path, arch: str | None, output: Path, calibrate: Path | None, timesteps: int | None,
            size: int, strict: bool, headroom: float, payload_bits: int = 12, allow_violations: bool = False,
            as_json: bool = False, dt: float | None = None) -> None:
    """Quantize a trained network (CHECKPOINT: a file or a bundled model's name, e.g.
    vlifnet_small_deployable, or a NIR graph MODEL.nir) to Loihi fixed point and write its HDF5 (netx) description."""
    from neuro_deploy import convert as conversion

    check_outputs([output], [checkpoint, calibrate])
    if checkpoint.suffix.lower() == ".nir":
        _convert_nir(checkpoint, output, calibrate, dt, as_json)
        return
    if dt is not None:
        raise NeuroDeployError("--dt applies to NIR graphs (MODEL.nir)")
    with progress("convert", logs=False) as update:
        result = conversion.convert(checkpoint, arch, calibrate, size, timesteps, strict, headroom, payload_bits,
                                    allow_violations, on_stage=update)
    conversion.write(result, output)
    report = conversion.quantization_report(result.quantized)
    meta = result.meta
    if as_json:
        click.echo(_json({"output": str(output), "layers": report, "host_layers": meta["host_layers"],
                          "steps": meta["steps"], "latency": meta["latency"], "input_shape": meta["input_shape"],
                          "violations": meta["violations"]}))
        return
    table = Table(title=f"quantization of {checkpoint.name}", box=box.SIMPLE)
    for col in ("layer", "kind", "w bits", "w exp", "clipped", "w error", "state peak", "overflow"):
        table.add_column(col, justify="left" if col in ("layer", "kind") else "right")
    for r in report:
        table.add_row(r["name"], r["kind"], str(r["weight_bits"] or "-"),
                      ",".join(map(str, r["weight_exp"])) or "-", f"{r['clipped']:.1%}",
                      f"{r['weight_error']:.2%}", f"{r['state_peak_bits']:.1f}/{r['state_bits']} bits",
                      "YES" if r["overflow"] else "")
    _console().print(table)
    _note(f"wrote {output}: {len(report)} layers ({meta['host_layers']} on the host), input {meta['input_shape']}, "
          f"{meta['steps']} steps per tile (the output's latency: {meta['latency']})")
    for violation in meta["violations"]:
        click.echo(f"violates Loihi's limits: {violation}", err=True)


def _convert_nir(model: Path, output: Path, calibrate: Path | None, dt: float | None, as_json: bool) -> None:
    """`convert MODEL.nir`: the NIR front end (neuro_deploy/nir_convert.py), a plain netx file out."""
    from neuro_deploy.nir_convert import convert_nir

    check_inputs([model, calibrate])
    result = convert_nir(model, output, calibrate, dt)
    summary = {"output": str(output), "dt": result.chain.dt, "dt_source": result.dt_source,
               "calibrated": result.calibrated, "input_shape": list(result.chain.input_shape),
               "layers": [{"node": s.name, "kind": s.neuron.kind, "synapse": layer.kind, "shape": list(layer.shape),
                           "scale": scale, "vth": layer.vth, "v_decay": layer.v_decay, "i_decay": layer.i_decay}
                          for s, layer, scale in zip(result.chain.stages, result.layers, result.scales)]}
    if as_json:
        click.echo(_json(summary))
        return
    click.echo(f"dt = {result.chain.dt:g} s ({result.dt_source})")
    for layer in summary["layers"]:
        click.echo(f"  {layer['node']}: {layer['kind']} via {layer['synapse']} {layer['shape']}, vth {layer['vth']}, "
                   f"vDecay {layer['v_decay']}, iDecay {layer['i_decay']}, {layer['scale']:.4g} units per unit")
    _note(f"wrote {output}: a plain netx file of {len(result.layers)} layers, input {summary['input_shape']}"
          f"{'' if result.calibrated else ' (no --calibrate: state ranges bounded from the weights)'}")


@cli.command()
@click.argument("network", type=click.Path(path_type=Path))
@click.option("--nir", "nir_path", required=True, type=click.Path(path_type=Path), help="NIR graph to write (.nir).")
@click.option("--dt", default=1e-4, show_default=True, type=float, help="The time step the NIR time constants assume.")
def export(network: Path, nir_path: Path, dt: float) -> None:
    """Write a network file (plain netx, or the CUBA-LIF layers of a converted one) as a NIR graph."""
    from neuro_deploy.netx_io import read_network
    from neuro_deploy.nir_export import export_nir, write_nir

    check_inputs([network])
    check_outputs([nir_path], [network])
    if not dt > 0:
        raise NeuroDeployError(f"--dt {dt}: expected a positive number of seconds")
    result = export_nir(read_network(network), dt)
    write_nir(result.graph, nir_path)
    _note(f"wrote {nir_path}: {result.layers} neuron layers at dt {dt:g} s")
    if result.left_out:
        click.echo(f"not exported (NIR has no primitive for them): {'; '.join(result.left_out)}", err=True)


@cli.command()
@click.argument("network", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the layers as a JSON list.")
@click.option("--skip-layer", "skip_layers", multiple=True, metavar="TYPE",
              help="Plain netx file: leave out its trailing layers of this type (e.g. average, which netx cannot "
                   "build); repeat for several.")
def inspect(network: Path, as_json: bool, skip_layers: tuple[str, ...]) -> None:
    """Layers of a network description (ours or any netx file) with totals."""
    import json

    from neuro_deploy.inspect_net import COLUMNS, describe

    with progress("inspect", logs=False) as update:
        rows = describe(network, skip_layers, update)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    violations = [v for r in rows for v in r["violations"]]
    table = Table(title=str(network), box=box.SIMPLE)
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in ("index", "neurons", "synapses", "delay") else "left")
    for r in rows:
        table.add_row(*[",".join(map(str, r[c])) if isinstance(r[c], list) else ("-" if r[c] is None else str(r[c]))
                        for c in COLUMNS])
    table.add_row("", "total", "", "", "", str(sum(r["neurons"] for r in rows)),
                  str(sum(r["synapses"] for r in rows)), "", "", str(max((r["delay"] for r in rows), default=0)),
                  "", "", str(len(violations)))
    _console().print(table)
    for violation in violations:
        click.echo(f"violates Loihi's limits: {violation}")
    exposed = [r for r in rows if (r["worst_sum"] or 0) > 1]
    if exposed:
        worst = max(exposed, key=lambda r: r["worst_sum"])
        click.echo(f"{len(exposed)} layers have a synapse that some input can overflow (worst_sum > 1; worst: {worst['name']}, "
                   f"{worst['worst_sum']}x its accumulator); their calibration peaks fit")


@cli.command()
@click.argument("network", type=click.Path(path_type=Path))
@click.option("--skip-first", default=0, show_default=True, help="Leave the first N layers off the chip "
              "(netx's skip_layers).")
@click.option("--board", help="oheo-gulch, kapoho-point or hala-point [default: the smallest that holds it].")
@click.option("--chips", type=int, help="Check the plan against this many chips instead of a board.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--input", "input_path", type=click.Path(path_type=Path),
              help="Time the plan on a fast run of this input instead of the worst case.")
@click.option("--steps", type=int, help="Plain netx file with --input: steps to run (default: its tSample).")
@click.option("--require-fit", is_flag=True, help="Exit 3 when the network does not fit the board or chips.")
@click.option("--plot", type=click.Path(path_type=Path), help="Cores per layer and each budget's use (.png, .pdf, .svg).")
def plan(network: Path, skip_first: int, board: str | None, chips: int | None, fmt: str, input_path: Path | None,
         steps: int | None, require_fit: bool, plot: Path | None) -> None:
    """Loihi 2 deployment plan: cores per layer (Intel's compiler's blocks), chips, fit, time per step and image."""
    import json

    from neuro_deploy.deploy import render
    from neuro_deploy.deploy.plan import plan as make_plan

    check_outputs([plot], [network, input_path])
    check_inputs([network, input_path])
    if plot is not None:
        render.check_plot_path(plot)
    result = make_plan(network, skip_first, board, chips, input_path, steps)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=1))
    else:
        _console().print(render.table(result))
        click.echo("\n".join(render.summary_lines(result)))
    if plot is not None:
        render.plot(result, plot)
        _note(f"wrote {plot}", err=fmt != "table")
    if not result.fits:
        click.echo(f"does not fit {result.board}: needs {result.chips} chips ({result.cores:,} cores)", err=True)
        if require_fit:
            sys.exit(3)


@cli.command()
@click.argument("network", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="ONNX file (default: NETWORK with .onnx).")
@click.option("--energy", "energy_report", type=click.Path(path_type=Path),
              help="Energy report (energy --json-out, simulate --energy): each layer's spikes, rate, synaptic "
                   "ops and energy on its node.")
@click.option("--plan", "with_plan", is_flag=True,
              help="Put each layer's Loihi 2 cores, block and chips (neuro-deploy plan) on its node.")
@click.option("--no-browser", is_flag=True,
              help="Serve the view and print its local URL instead of opening it; serves until Ctrl-C.")
@click.option("--export-only", is_flag=True, help="Write the ONNX file and exit without serving (for scripts).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535),
              help="Port netron serves on.")
def view(network: Path, output: Path | None, energy_report: Path | None, with_plan: bool, no_browser: bool,
         export_only: bool, port: int) -> None:
    """Write an ONNX view of a network file, converted or plain netx (one node per layer, edge shapes,
    every synapse attribute), and serve it with netron until Ctrl-C. Scripts use --export-only."""
    from neuro_deploy.onnx_view import export

    output = output or network.with_suffix(".onnx")
    check_outputs([output], [network, energy_report])
    check_inputs([network, energy_report])
    with progress("view", logs=False) as update:
        export(network, output, energy_report, update, with_plan)
    _note(f"wrote {output}")
    if export_only:
        return
    import netron

    address = netron.start(str(output), address=("localhost", port), browse=not no_browser)
    host, bound = address if isinstance(address, tuple) else ("localhost", port)
    click.echo(f"netron serving at http://{host}:{bound} (Ctrl-C to stop)")
    netron.wait()


@cli.command()
@click.argument("network", type=click.Path(path_type=Path))
@click.option("--input", "input_path", required=True, type=click.Path(path_type=Path),
              help="Image (PNG/JPG) or .npy: (C,H,W) values, or (T,C,H,W) frames fed one per step "
                   "(plain netx file: .npy of its input shape, or (T,*shape) frames).")
@click.option("--target", type=click.Path(path_type=Path), help="Clean image: print PSNR/SSIM against it.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Result: .png/.jpg image or .npy (C,H,W) array in [0,1] "
                   "(plain netx file: .npy of the output layer's events [steps, *shape]).")
@click.option("--backend", type=click.Choice(["fast", "lava"]), default="fast", show_default=True)
@click.option("--dump", type=click.Path(path_type=Path), help="Write every layer's events per step (.npz).")
@click.option("--steps", type=int, help="Plain netx file: steps to run (default: /simulation/tSample, or T frames).")
@click.option("--skip-layer", "skip_layers", multiple=True, metavar="TYPE",
              help="Plain netx file: drop its trailing layers of this type (e.g. average, which netx cannot "
                   "build); repeat for several.")
@click.option("--energy", "with_energy", is_flag=True,
              help="Count this run too: per-layer energy table, OUT_energy.json and OUT_energy.png beside OUT.")
@click.option("--profile", "profiles", multiple=True, default=DEFAULT_PROFILES, show_default=True,
              help="With --energy: bundled profile or TOML file; repeat for several.")
@click.option("--lava-torch-conv", is_flag=True,
              help="Lava back end: let Lava's Conv use its torch path (off upstream; exact below 2^24).")
@click.option("--device", default="cpu", show_default=True,
              help="Fast back end, converted networks: torch device to run on (e.g. cuda); same results as the CPU.")
@click.option("--json", "as_json", is_flag=True, help="Print the run and its metrics as a JSON object.")
def simulate(network: Path, input_path: Path, target: Path | None, output: Path, backend: str,
             dump: Path | None, steps: int | None, with_energy: bool, profiles: tuple[str, ...],
             lava_torch_conv: bool, skip_layers: tuple[str, ...], device: str, as_json: bool = False) -> None:
    """Run a converted network in fixed point (fast back end or Lava) and derain an image, or run
    a plain netx file (lava-dl's own networks) on an input array."""
    from neuro_deploy import simulate as sim
    from neuro_deploy.data import evaluate, image_format, read_image, write_image
    from neuro_deploy.inference import OVERLAP, derain_array, float_model
    from neuro_deploy.netx_io import read_network
    from neuro_deploy.sim.lava import TORCH_CONV

    if lava_torch_conv:
        os.environ[TORCH_CONV] = "1"  # read by the Lava worker

    if dump is not None and dump.suffix != ".npz":
        raise NeuroDeployError(f"--dump {dump}: expected a .npz file name")
    sim.check_device(device, backend)
    check_outputs([output, dump], [network, input_path, target])
    check_inputs([network, input_path])  # --target: read later, after the checks that it applies
    net = read_network(network, skip_layers)
    if net.quantized.free_running:
        _simulate_events(net, input_path, target, output, backend, dump, steps, profiles if with_energy else None,
                         as_json)
        return
    if steps is not None:
        raise NeuroDeployError("--steps applies to plain netx files; a converted network runs its own steps")
    if output.suffix.lower() != ".npy":
        image_format(output)
    shape = net.meta["input_shape"]
    x = sim.read_input(input_path, shape[0], int(net.meta["settings"]["timesteps"]))
    clean = read_image(target) if target else None
    if clean is not None and clean.shape[:2] != x.shape[-2:]:
        raise NeuroDeployError(f"target {target} is {clean.shape[1]}x{clean.shape[0]}, input is "
                               f"{x.shape[-1]}x{x.shape[-2]}")
    if with_energy:  # profiles are checked before the run, so a typo fails at once
        from neuro_deploy.energy.profiles import load_profiles
        from neuro_deploy.energy.run import simulate_and_count

        loaded = load_profiles(profiles)
    sim.check_memory(net, int(net.meta["steps"]), dump is not None, backend)
    source = float_model(net.meta.get("source", {})) if x.ndim == 3 else None  # refused before any output
    with progress(f"simulate ({backend})") as update:
        if with_energy:
            result, counts = simulate_and_count(net, x, backend, keep_events=dump is not None, on_tile=update)
        else:
            result = sim.simulate(net, x, backend, keep_events=dump is not None, on_tile=update, device=device)
    reference = None if source is None else derain_array(source, x.transpose(1, 2, 0), tile=shape[-1], overlap=OVERLAP)
    if output.suffix.lower() == ".npy":
        with atomic_path(output) as tmp, open(tmp, "wb") as f:
            np.save(f, result.output.transpose(2, 0, 1).astype(np.float32))
    else:
        write_image(output, result.output)
    _note(f"wrote {output} ({result.tiles} tile(s) of {shape[1]}x{shape[2]}, {net.meta['steps']} steps each)",
          err=as_json)
    if dump is not None:
        with atomic_path(dump) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **result.events)
        _note(f"wrote {dump} ({len(result.events)} layer event arrays)", err=as_json)
    scores = {"output": str(output), "tiles": result.tiles, "steps": net.meta["steps"]}
    if clean is not None:
        scores["vs_target"] = evaluate(result.output, clean)
        if reference is not None:
            scores["float_vs_target"] = evaluate(reference, clean)
    if reference is not None:
        scores["vs_float_model"] = evaluate(result.output, reference)
    if with_energy:
        from neuro_deploy.deploy.energy import priced_report

        scores["energy"] = priced_report(net, counts, loaded)
    if as_json:
        click.echo(_json(scores))
    else:
        for key, label in (("vs_target", f"{backend:5s} vs target "), ("float_vs_target", "float vs target "),
                           ("vs_float_model", f"{backend} vs float model")):
            if key in scores:
                click.echo(f"{label}: {_format_metrics(scores[key])}")
    if with_energy:
        _show_energy(scores["energy"], "none" if as_json else "table", output.with_name(f"{output.stem}_energy.json"),
                     output.with_name(f"{output.stem}_energy.png"))


def _simulate_events(net, input_path: Path, target: Path | None, output: Path, backend: str, dump: Path | None,
                     steps: int | None, profiles: tuple[str, ...] | None, as_json: bool) -> None:
    """`simulate` on a plain netx file: the output layer's events to .npy, all layers' to --dump,
    and with `profiles` (--energy) the run's energy beside them."""
    from neuro_deploy import simulate as sim
    from neuro_deploy.ir.quantized import Drive

    if target is not None:
        raise NeuroDeployError(f"--target applies to deraining networks; {net.path} is a plain netx file")
    if output.suffix.lower() != ".npy":
        raise NeuroDeployError(f"-o {output}: a plain netx file's output events go to a .npy file")
    x = sim.read_events(input_path, net)
    drive = Drive(sim.run_steps(net, x, steps))
    sim.check_memory(net, drive.steps, dump is not None, backend)
    if profiles is not None:
        from neuro_deploy.energy.profiles import load_profiles
        from neuro_deploy.energy.run import simulate_and_count

        loaded = load_profiles(profiles)
    with progress(f"simulate ({backend})") as update:  # a Lava run reports its steps
        if profiles is not None:
            result, counts = simulate_and_count(net, x, backend, keep_events=dump is not None, on_tile=update,
                                                drive=drive)
        else:
            result = sim.simulate(net, x, backend, keep_events=dump is not None, on_tile=update, drive=drive)
    with atomic_path(output) as tmp, open(tmp, "wb") as f:
        np.save(f, result.output)
    _note(f"wrote {output} (output layer events {list(result.output.shape)}, {result.steps} steps)", err=as_json)
    if dump is not None:
        with atomic_path(dump) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **result.events)
        _note(f"wrote {dump} ({len(result.events)} layer event arrays)", err=as_json)
    report = None
    if profiles is not None:
        from neuro_deploy.deploy.energy import priced_report

        report = priced_report(net, counts, loaded)
    if as_json:
        click.echo(_json({"output": str(output), "steps": result.steps, "shape": list(result.output.shape),
                          "events": int(np.count_nonzero(result.output)), **({"energy": report} if report else {})}))
    if report is not None:
        _show_energy(report, "none" if as_json else "table", output.with_name(f"{output.stem}_energy.json"),
                     output.with_name(f"{output.stem}_energy.png"))


@cli.command()
@click.argument("network", type=click.Path(path_type=Path))
@click.option("--input", "input_path", required=True, type=click.Path(path_type=Path),
              help="Image or .npy: (C,H,W) values or (T,C,H,W) frames; a plain netx file takes a .npy of its input shape.")
@click.option("--backend", type=click.Choice(["fast", "lava"]), default="fast", show_default=True)
@click.option("--profile", "profiles", multiple=True, default=DEFAULT_PROFILES, show_default=True,
              help="Bundled profile name (loihi, cmos45_fp32, ...) or a TOML file; repeat for several.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--plot", type=click.Path(path_type=Path), help="Bar chart of the energy per layer (.png, .pdf, .svg).")
@click.option("--json-out", type=click.Path(path_type=Path), help="Also write the JSON report to this file.")
@click.option("--steps", type=int, help="Steps for a one-frame input to a plain netx file (default: its tSample).")
@click.option("--skip-layer", "skip_layers", multiple=True, metavar="TYPE",
              help="Plain netx file: drop its trailing layers of this type (e.g. average, which netx cannot "
                   "build); repeat for several.")
def energy(network: Path, input_path: Path, backend: str, profiles: tuple[str, ...], fmt: str, plot: Path | None,
           json_out: Path | None, steps: int | None, skip_layers: tuple[str, ...]) -> None:
    """Per-layer events, synaptic ops, MACs and neuron updates of a run, priced on hardware profiles."""
    from neuro_deploy.deploy.energy import report_of_file
    from neuro_deploy.energy import report as energy_report
    from neuro_deploy.energy.profiles import load_profiles

    loaded = load_profiles(profiles)
    check_outputs([json_out, plot], [network, input_path])
    check_inputs([network, input_path])
    if plot is not None:
        energy_report.check_plot_path(plot)
    with progress(f"energy ({backend})") as update:
        report = report_of_file(network, input_path, loaded, backend, steps, on_tile=update, skip=skip_layers)
    _show_energy(report, fmt, json_out, plot)


def _show_energy(report: dict, fmt: str, json_out: Path | None, plot: Path | None) -> None:
    """Print an energy report as a table, CSV or JSON (or not at all: "none"), and write its JSON and
    bar chart when asked."""
    import json

    from neuro_deploy.energy import report as energy_report

    if fmt == "json":
        click.echo(json.dumps(report, indent=1))
    elif fmt == "csv":
        click.echo(energy_report.to_csv(report), nl=False)
    elif fmt == "table":
        _console().print(energy_report.table(report))
        click.echo("\n".join(energy_report.summary_lines(report)))
    for path, write in ((json_out, energy_report.write_json), (plot, energy_report.plot)):
        if path is not None:
            write(report, path)
            _note(f"wrote {path}", err=fmt != "table")


@cli.command()
@click.option("--vlifnet", "vlifnet_path", type=click.Path(path_type=Path), metavar="CKPT|SPEC",
              help="VLIFNet checkpoint [default: the shipped small one]; with --analytic also a specification, "
                   "e.g. dim=24,en=4,4,6,6,de=4,4,6,6,refinement=on [default: the release].")
@click.option("--esdnet", "esdnet_path", type=click.Path(path_type=Path), metavar="CKPT|SPEC",
              help="ESDNet checkpoint [default: the shipped small one]; with --analytic also a specification "
                   "(dim, en, de) [default: the release].")
@click.option("--deployable", "deployable_path", default=str(BUNDLED_DEPLOYABLE), show_default=True,
              type=click.Path(path_type=Path), help="The VLIFNet deployed for the Loihi column.")
@click.option("--image", "image_path", type=click.Path(path_type=Path), help="Rainy image (default: the bundled one).")
@click.option("--size", type=int, help="Input size of the small networks [default: 64]; with --analytic, of both [256].")
@click.option("--release-size", default=256, show_default=True, help="Input size of the release configuration.")
@click.option("--no-release", is_flag=True, help="Skip the release configuration (about 25 s on 2 cores).")
@click.option("--profile", default="cmos45_fp32", show_default=True, help="Profile with AC and MAC terms.")
@click.option("--loihi-profile", default="loihi2", show_default=True,
              help="Profile for the deployed networks (loihi2: with the plan's chips, time and static energy).")
@click.option("--analytic", is_flag=True,
              help="MACs from the architectures alone (no forward pass), priced by the paper's global-rate method.")
@click.option("--preset", type=click.Choice(["paper", "release-cpu"]),
              help="paper: the original code's call (dim-24 VLIFNet, 256x256, T=4, rate 0.1642) vs the release ESDNet; "
                   "release-cpu: both release configurations at the per-layer rates of their CPU-trained weights.")
@click.option("--firing-rate", help="Analytic: R, vlifnet=R,esdnet=R (each R may be a file of per-layer rates, e.g. "
                                   "from `neuro-deploy rates`, or a bundled profile's name such as "
                                   "esdnet_release_cpu), or a JSON of per-layer rates [default: 0.1642].")
@click.option("--first-layer", type=click.Choice(["per-step", "once"]), default="per-step", show_default=True,
              help="Analytic: charge the first conv on every step or once (the image is the same on every step).")
@click.option("--real-inputs", type=click.Choice(["ac", "mac"]), default="ac", show_default=True,
              help="Analytic: body layers with real-valued or graded input as rate x AC, or as dense MACs.")
@click.option("--exclude", multiple=True, type=click.Choice(["channel_adjust", "gates", "refinement"]),
              help="Analytic: leave VLIF's channel_adjust, the gates and products, or ESDNet's refinement out; repeatable.")
@click.option("--counting", type=click.Choice(["exact", "textbook"]), default="exact", show_default=True,
              help="Analytic: only the taps inside the image, or k^2*H*W per channel pair.")
@click.option("--timesteps", type=int, help="Analytic: T [default: the configuration's, 4].")
@click.option("--sweep", is_flag=True, help="Analytic: every combination of the switches, each with its solved value.")
@click.option("--solve", type=click.Choice(["esdnet-rate", "vlifnet-rate", "rate"]), default="esdnet-rate",
              show_default=True, help="Analytic: the global rate solved for --target-ratio.")
@click.option("--target-ratio", type=float, default=0.13, show_default=True, help="Analytic: VLIFNet/ESDNet to solve for.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--json-out", type=click.Path(path_type=Path), help="Also write the JSON comparison to this file.")
def compare(vlifnet_path: Path | None, esdnet_path: Path | None, deployable_path: Path, image_path: Path | None,
            size: int | None, release_size: int, no_release: bool, profile: str, loihi_profile: str, analytic: bool,
            preset: str | None, firing_rate: str | None, first_layer: str, real_inputs: str, exclude: tuple[str, ...],
            counting: str, timesteps: int | None, sweep: bool, solve: str, target_ratio: float, fmt: str,
            json_out: Path | None) -> None:
    """The paper's comparison: VLIFNet vs ESDNet vs ANN, activity-based and strict conventions, deployed on Loihi;
    or, with --analytic (implied by --preset, --sweep, --firing-rate and specifications), the paper's own
    global-rate method."""
    import json

    from neuro_deploy.energy.profiles import load_profile
    from neuro_deploy.energy.report import write_json

    specs = [p for p in (vlifnet_path, esdnet_path) if p is not None and "=" in str(p)]  # only --analytic reads specs
    if analytic or preset or sweep or firing_rate is not None or specs:
        from neuro_deploy.energy import analytic as method

        result = method.configure(load_profile(profile), preset, vlifnet_path and str(vlifnet_path),
                                  esdnet_path and str(esdnet_path), size, timesteps, firing_rate, first_layer,
                                  real_inputs, exclude, counting)
        scenarios = method.sweep(result, solve, target_ratio) if sweep else None
        data = {**result.to_json(), "solve": method.solution(result, solve, target_ratio),
                **({"sweep": scenarios.to_json()} if scenarios else {})}
        tables = [*method.analysis_tables(result), *([method.sweep_table(scenarios)] if scenarios else [])]
        lines = method.analysis_lines(result, solve, target_ratio)
    else:
        from neuro_deploy.energy import compare as comparison

        with progress("compare") as update:
            stages = iter(range(1, 100))
            result = comparison.run_comparison(
                {"vlifnet": vlifnet_path or MODELS / "vlifnet_small.pt", "esdnet": esdnet_path or MODELS / "esdnet_small.pt"},
                deployable_path, load_profile(profile), load_profile(loihi_profile),
                image_path or comparison.DEFAULT_IMAGE, release_size, size or 64, not no_release,
                on_stage=lambda stage: update(next(stages), 4 if no_release else 6, stage))
        data, tables, lines = result.to_json(), [comparison.comparison_table(result)], comparison.comparison_lines(result)
    if fmt == "json":
        click.echo(json.dumps(data, indent=1))
    else:
        for t in tables:
            _console().print(t)
        click.echo("\n".join(lines))
    if json_out is not None:
        write_json(data, json_out)
        click.echo(f"wrote {json_out}", err=fmt != "table")


@cli.command("rates")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--data", "data_root", required=True, type=click.Path(path_type=Path),
              help="Paired dataset root (its input/ images) or a plain folder of images.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Rates file to write (.json).")
@click.option("--size", default=64, show_default=True, help="Centre crop of every image (upscaled when smaller).")
@click.option("--limit", type=click.IntRange(min=1), help="The first N images (by name) [default: all].")
@click.option("--json", "as_json", is_flag=True, help="Print the rates file's content as JSON.")
def rates_command(checkpoint: Path, data_root: Path, output: Path, size: int, limit: int | None, as_json: bool) -> None:
    """Per-layer firing rates of a checkpoint (a path or a bundled model's name) over a folder of images,
    for `compare --analytic --firing-rate vlifnet=FILE,...`: a layer's rate is its effective ops over
    its dense MACs, summed over the images."""
    from neuro_deploy import zoo
    from neuro_deploy.energy import rates

    if output.suffix.lower() != ".json":
        raise NeuroDeployError(f"-o {output}: the rates file is JSON, name it *.json")
    paths = rates.image_paths(data_root, limit)
    check_outputs([output], [checkpoint, *paths])
    ckpt = zoo.read_checkpoint(checkpoint)
    zoo.check_config(ckpt)
    images = rates.load_images(paths, size)
    with progress("rates") as update:
        result = rates.measure(ckpt, str(checkpoint), images, str(data_root),
                               on_image=lambda done, total: update(done, total, paths[done - 1].name))
    rates.write(result, output)
    if as_json:
        click.echo(_json(result.to_json()))
    else:
        t = Table(title=f"Firing rates of {checkpoint} ({result.weights}) over {result.images} images at "
                        f"{result.size}x{result.size}, T={result.T}", box=box.SIMPLE)
        for col in ("layer", "effective ops", "dense MACs", "rate"):
            t.add_column(col, justify="left" if col == "layer" else "right")
        for name, rate in result.rates.items():
            t.add_row(name, f"{result.effective[name]:,}", f"{result.dense[name]:,}", f"{rate:.4f}")
        _console().print(t)
        summary = result.to_json()
        click.echo(f"{result.arch}: rate over all rated layers {summary['global_rate']:.4f} (the global rate giving "
                   f"the same ACs), neuron spike rate {summary['spike_rate']:.4f}")
    for line in rates.warning_lines(result):
        click.echo(line, err=True)
    _note(f"wrote {output}", err=as_json)


@cli.command()
@click.option("--model", "model_path", default=str(BUNDLED_MODEL), show_default=True, type=click.Path(path_type=Path))
@click.option("--deployable", "deployable_path", default=str(BUNDLED_DEPLOYABLE), show_default=True,
              type=click.Path(path_type=Path))
@click.option("-o", "--output-dir", default="out/demo", show_default=True, type=click.Path(path_type=Path))
@click.option("--backend", type=click.Choice(["fast", "lava"]), default="lava", show_default=True)
def demo(model_path: Path, deployable_path: Path, output_dir: Path, backend: str) -> None:
    """The main job on bundled data: derain, convert the deployable model, run it on Lava with its
    energy report, and compare VLIFNet with ESDNet as the paper does."""
    from neuro_deploy import zoo

    ctx = click.get_current_context()
    check_outputs([output_dir / "compare.json"])
    for path in (model_path, deployable_path):  # both checked before the first image is written
        zoo.check_config(zoo.read_checkpoint(path))
    inputs, targets = ASSETS / "demo" / "input", ASSETS / "demo" / "target"
    for name in ("rain_demo.png", "rain_demo_heavy.png"):
        click.echo(f"== float PyTorch {model_path.name} on {name}")
        ctx.invoke(derain, model_path=model_path, arch=None, input_path=inputs / name,
                   output=output_dir / name.replace(".png", "_derained.png"), target=targets / name,
                   tile=80, overlap=8)
    net = output_dir / f"{deployable_path.stem}.net"
    click.echo(f"== convert {deployable_path.name} to Loihi fixed point")
    ctx.invoke(convert, checkpoint=deployable_path, arch=None, output=net, calibrate=None, timesteps=None, size=64,
               strict=True, headroom=2.0)
    click.echo(f"== simulate {net.name} on the {backend} back end (rain_demo.png), counting its events")
    ctx.invoke(simulate, network=net, input_path=inputs / "rain_demo.png", target=targets / "rain_demo.png",
               output=output_dir / f"rain_demo_{backend}.png", backend=backend, dump=None, steps=None,
               with_energy=True, profiles=DEFAULT_PROFILES)
    click.echo("== VLIFNet vs ESDNet: the paper's energy comparison, on the bundled models")
    ctx.invoke(compare, vlifnet_path=MODELS / "vlifnet_small.pt", esdnet_path=MODELS / "esdnet_small.pt",
               deployable_path=deployable_path, image_path=None, size=64, release_size=256, no_release=False,
               profile="cmos45_fp32", loihi_profile="loihi2", fmt="table",
               json_out=output_dir / "compare.json")


@cli.group("cross-check")
def cross_check() -> None:
    """Our energy counts against independent tools (optional extras): SANA-FE's Loihi model and
    NeuroBench's synaptic operations. A check that finds a difference exits 1."""


@cross_check.command("sanafe")
@click.argument("network", type=click.Path(path_type=Path))
@click.option("--input", "input_path", required=True, type=click.Path(path_type=Path),
              help="Image or .npy, as `energy` takes it.")
@click.option("--steps", type=int, help="Plain netx file: steps to run (default: its tSample).")
@click.option("--profile", default="loihi", show_default=True, help="Our profile to price the same events on.")
@click.option("--chips", type=int, help="Loihi chips in SANA-FE's mesh [default: as few as give each layer its cores].")
@click.option("--layers", "per_layer", is_flag=True, help="Print every layer.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def cross_check_sanafe(network: Path, input_path: Path, steps: int | None, profile: str, chips: int | None,
                       per_layer: bool, fmt: str) -> None:
    """Replay a run's events through SANA-FE's calibrated Loihi: synaptic events and spikes must
    equal ours in every layer; energy per term beside our profile's (docs/cross-check-sanafe.md)."""
    from neuro_deploy.energy.report import format_energy
    from neuro_deploy.energy.sanafe_check import TERMS, check_file

    check_inputs([network, input_path])
    with progress("cross-check sanafe"):
        result = check_file(network, input_path, steps, profile, chips)
    if fmt == "json":
        click.echo(_json(result.to_json()))
    else:
        table = Table(title=f"{network}: ours ({result.profile}) vs SANA-FE ({result.chips} Loihi chip(s), "
                            f"{result.cores} cores)", box=box.SIMPLE)
        for col in ("layer", "synaptic events ours / SANA-FE", "spikes ours / SANA-FE", "energy ours", "energy SANA-FE"):
            table.add_column(col, justify="left" if col == "layer" else "right")
        rows = [(x.name, x.synops, x.sanafe_synops, x.spikes, x.sanafe_spikes, sum(x.ours_pj.values()),
                 sum(x.sanafe_pj.values())) for x in result.layers] if per_layer else []
        ours, theirs = result.total("ours_pj"), result.total("sanafe_pj")
        total = result.to_json()["total"]
        rows.append(("total", total["synops"], total["sanafe_synops"], total["spikes"], total["sanafe_spikes"],
                     sum(ours.values()), sum(theirs.values())))
        for name, a, b, c, d, e, f in rows:
            table.add_row(name, f"{a:,} / {b:,}", f"{c:,} / {d:,}", format_energy(e), format_energy(f))
        _console().print(table)
        click.echo("per term (ours / SANA-FE): " + ", ".join(
            f"{t} {format_energy(ours[t])} / {format_energy(theirs[t])}" for t in TERMS))
        click.echo(f"{len(result.layers) - len(result.mismatches)} of {len(result.layers)} layers agree exactly; "
                   f"SANA-FE's own totals {'reconcile' if result.reconciles else 'DO NOT reconcile'} with the layers'")
    if result.mismatches or not result.reconciles:
        click.echo(f"cross-check failed: {len(result.mismatches)} layers differ"
                   + ("" if result.reconciles else "; SANA-FE's totals do not reconcile"), err=True)
        sys.exit(EXIT_FAILURE)


@cross_check.command("neurobench")
@click.argument("checkpoints", nargs=-1, type=click.Path(path_type=Path))
@click.option("--size", default=32, show_default=True, help="Side of the centre crop of the image.")
@click.option("--image", "image_path", type=click.Path(path_type=Path), help="Rainy image (default: the bundled one).")
@click.option("--layers", "per_layer", is_flag=True, help="Print every layer.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def cross_check_neurobench(checkpoints: tuple[Path, ...], size: int, image_path: Path | None, per_layer: bool,
                           fmt: str) -> None:
    """Our strict effective ACs/MACs against NeuroBench's own SynapticOperations, conv by conv, on
    checkpoints or bundled models [default: the three bundled] (docs/cross-check-neurobench.md)."""
    from neuro_deploy.energy.neurobench_check import DEFAULT_IMAGE, check_checkpoint, summary_lines

    check_inputs([image_path])
    names = checkpoints or (Path("vlifnet_small_deployable"), Path("vlifnet_small"), Path("esdnet_small"))
    results = []
    with progress("cross-check neurobench") as update:
        for i, checkpoint in enumerate(names):
            results.append(check_checkpoint(checkpoint, size, image_path or DEFAULT_IMAGE))
            update(i + 1, len(names))
    if fmt == "json":
        click.echo(_json([r.to_json() for r in results]))
    else:
        for result in results:
            click.echo("\n".join(summary_lines(result, per_layer)))
    differing = [r.network for r in results if r.mismatches]
    if differing:
        click.echo(f"cross-check failed: layers differ from NeuroBench in {', '.join(differing)}", err=True)
        sys.exit(EXIT_FAILURE)


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM (a timeout, a job killed) unwinds like Ctrl-C, so temporary files are removed."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn user errors into one line and a non-zero exit."""
    import signal

    from neuro_deploy import progress as progress_module

    args = sys.argv[1:] if argv is None else list(argv)
    if argv is None:
        signal.signal(signal.SIGTERM, _terminate)
    progress_module.verbosity = 0
    try:
        cli.main(args=args or ["--help"], prog_name="neuro-deploy", standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, EOFError):  # click calls an EOFError an abort; it is a truncated input
            click.echo(f"neuro-deploy: error: unexpected end of an input file (empty or truncated): "
                       f"{exc.__context__ or 'EOFError'}", err=True)
            sys.exit(EXIT_USAGE)
        click.echo("neuro-deploy: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"neuro-deploy: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except NeuroDeployError as exc:
        click.echo(f"neuro-deploy: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # a bug, not bad input: still one line unless debugging
        if os.environ.get("NEURO_DEPLOY_DEBUG") or progress_module.verbosity > 0:
            raise
        click.echo(f"neuro-deploy: internal error: {type(exc).__name__}: {exc} "
                   "(set NEURO_DEPLOY_DEBUG=1 for the traceback)", err=True)
        sys.exit(EXIT_FAILURE)


if __name__ == "__main__":
    main()
