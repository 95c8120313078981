"""Commands that run a network file: simulate one input, evaluate a dataset."""

from __future__ import annotations

from pathlib import Path

import click

from neuro_deploy.cli.base import (cli, fail_on_overflow_option, format_metrics, note, show_energy, to_json,
                                   typed_options, warn_overflow)
from neuro_deploy.common.progress import progress
from neuro_deploy.energy.profiles import DEFAULT_PROFILES
from neuro_deploy.errors import NeuroDeployError


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
@fail_on_overflow_option
def simulate(network: Path, input_path: Path, target: Path | None, output: Path, backend: str,
             dump: Path | None, steps: int | None, with_energy: bool, profiles: tuple[str, ...],
             lava_torch_conv: bool, skip_layers: tuple[str, ...], device: str, as_json: bool = False,
             fail_on_overflow: bool = False) -> None:
    """Run a converted network in fixed point (fast back end or Lava) and derain an image, or run
    a plain netx file (lava-dl's own networks) on an input array."""
    from neuro_deploy.energy.loihi2 import priced_runner
    from neuro_deploy.energy.profiles import load_profiles
    from neuro_deploy.run.simulate_file import energy_outputs, simulate_file

    pricing = priced_runner(load_profiles(profiles)) if with_energy else None  # a typo fails before the run
    with progress(f"simulate ({backend})") as update:
        run = simulate_file(network, input_path, output, target=target, backend=backend, dump=dump, steps=steps,
                            pricing=pricing, lava_torch_conv=lava_torch_conv, device=device, skip=skip_layers,
                            on_tile=update)
    for line in run.written:
        note(f"wrote {line}", err=as_json)
    if as_json:
        click.echo(to_json(run.summary))
    else:
        for key, label in (("vs_target", f"{backend:5s} vs target "), ("float_vs_target", "float vs target "),
                           ("vs_float_model", f"{backend} vs float model")):
            if key in run.summary:
                click.echo(f"{label}: {format_metrics(run.summary[key])}")
    if run.energy is not None:
        show_energy(run.energy, "none" if as_json else "table", *energy_outputs(output))
    warn_overflow(run.summary["overflow"], fail_on_overflow)


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
              help="--net: Ray workers [default: one per core here, as many as the memory holds, or per free "
                   "CPU of the --address cluster]; 1 runs in this process.")
@click.option("--address", metavar="HOST:PORT", help="--net: run on the existing Ray cluster with this head node.")
@fail_on_overflow_option
def evaluate(model_path: Path | None, net_path: Path | None, arch: str | None, data_root: Path, as_json: bool,
             backend: str, fmt: str, output: Path | None, workers: int | None, address: str | None,
             fail_on_overflow: bool = False) -> None:
    """Mean PSNR/SSIM of a float model (--model) or a deployed network (--net, per image, on Ray
    workers) on a paired dataset, next to the rainy-input baseline."""
    from neuro_deploy import zoo
    from neuro_deploy.zoo.train import validate

    if (model_path is None) == (net_path is None):
        raise NeuroDeployError("give --model CKPT (a float model) or --net NET (a deployed network)")
    if net_path is not None:
        _evaluate_net(net_path, data_root, backend, "json" if as_json else fmt, output, workers, address,
                      fail_on_overflow)
        return
    net_only = typed_options() & {"backend", "fmt", "output", "workers", "address", "fail_on_overflow"}
    if net_only:
        raise NeuroDeployError(f"--{sorted(net_only)[0].replace('fmt', 'format').replace('_', '-')} applies to --net")
    with progress("evaluate") as update:
        scores = validate(zoo.load(model_path, arch), str(data_root), on_image=update)
    if as_json:
        click.echo(to_json(scores))
        return
    for who in ("input", "model"):
        click.echo(f"{who:6s}: " + format_metrics({k: scores[f'{who}_{k}'] for k in ('psnr', 'ssim', 'psnr_y', 'ssim_y')}))
    click.echo(f"({scores['images']} images)")


def _evaluate_net(net_path: Path, data_root: Path, backend: str, fmt: str, output: Path | None,
                  workers: int | None, address: str | None, fail_on_overflow: bool) -> None:
    """`evaluate --net`: every image in fixed point, in this process or on Ray, resumable from -o;
    one warning line when the images run now overflowed."""
    from neuro_deploy.run import evaluate as evaluate_net
    from neuro_deploy.run.overflow import summarize

    with progress(f"evaluate ({backend})") as update:
        job, results, stats = evaluate_net.evaluate_network(net_path, data_root, backend, workers, address, output,
                                                            fmt, update)
    machine = "resumed: nothing left to run" if not stats.images else (
        f"{stats.images} images in {stats.seconds:.1f} s on {stats.workers} worker(s), "
        f"{stats.startup:.1f} s of it starting Ray: {stats.images / stats.seconds:.3f} images/s")
    if output is not None:
        note(f"wrote {output} ({len(results.records)} images; {results.resumed} resumed)", err=fmt != "table")
    if fmt != "table" and output is None:
        click.echo(results.render(fmt), nl=False)
        note(machine, err=True)
    else:
        for label, scores in evaluate_net.summary(results.document()):
            click.echo(f"{label:16s}: " + format_metrics({k: float("nan") if v is None else v
                                                          for k, v in scores.items()}))
        click.echo(f"({len(results.records)} images; {machine})")
    warn_overflow(summarize(job.net.quantized, stats.overflow), fail_on_overflow)
