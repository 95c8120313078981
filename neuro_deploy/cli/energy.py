"""Commands that count and price energy: energy, compare, rates."""

from __future__ import annotations

from pathlib import Path

import click
from rich import box
from rich.table import Table

from neuro_deploy.cli.base import (BUNDLED_DEPLOYABLE, cli, console, fail_on_overflow_option, note, show_energy,
                                   to_json, warn_overflow)
from neuro_deploy.common.atomic import check_inputs, check_outputs, check_plot_path
from neuro_deploy.common.progress import progress
from neuro_deploy.energy.profiles import DEFAULT_PROFILES
from neuro_deploy.errors import NeuroDeployError


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
@fail_on_overflow_option
def energy(network: Path, input_path: Path, backend: str, profiles: tuple[str, ...], fmt: str, plot: Path | None,
           json_out: Path | None, steps: int | None, skip_layers: tuple[str, ...], fail_on_overflow: bool = False
           ) -> None:
    """Per-layer events, synaptic ops, MACs and neuron updates of a run, priced on hardware profiles."""
    from neuro_deploy.energy.loihi2 import report_of_file
    from neuro_deploy.energy.profiles import load_profiles

    loaded = load_profiles(profiles)
    check_outputs([json_out, plot], [network, input_path])
    check_inputs([network, input_path])
    if plot is not None:
        check_plot_path(plot)
    with progress(f"energy ({backend})") as update:
        report = report_of_file(network, input_path, loaded, backend, steps, on_tile=update, skip=skip_layers)
    show_energy(report, fmt, json_out, plot)
    warn_overflow(report["overflow"], fail_on_overflow)


@cli.command()
@click.option("--vlifnet", "vlifnet_path", type=click.Path(path_type=Path), metavar="CKPT|SPEC",
              help="VLIFNet checkpoint [default: the shipped small one]; with --analytic also a specification, "
                   "e.g. dim=24,en=4,4,6,6,de=4,4,6,6,refinement=on [default: the release].")
@click.option("--esdnet", "esdnet_path", type=click.Path(path_type=Path), metavar="CKPT|SPEC",
              help="ESDNet checkpoint [default: the shipped small one]; with --analytic also a specification "
                   "(dim, en, de) [default: the release].")
@click.option("--deployable", "deployable_path", default=BUNDLED_DEPLOYABLE, show_default=True,
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
        from neuro_deploy.energy.analytic import analysis

        data, tables, lines = analysis(load_profile(profile), preset, vlifnet_path and str(vlifnet_path),
                                       esdnet_path and str(esdnet_path), size, timesteps, firing_rate, first_layer,
                                       real_inputs, exclude, counting, sweep, solve, target_ratio)
    else:
        from neuro_deploy.energy.compare import measured_comparison

        with progress("compare") as update:
            stages = iter(range(1, 100))
            data, tables, lines = measured_comparison(
                vlifnet_path, esdnet_path, deployable_path, load_profile(profile), load_profile(loihi_profile),
                image_path, release_size, size, not no_release,
                on_stage=lambda stage: update(next(stages), 4 if no_release else 6, stage))
    if fmt == "json":
        click.echo(json.dumps(data, indent=1))
    else:
        for t in tables:
            console().print(t)
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
    rates.check_memory(ckpt, len(paths), size)
    images = rates.load_images(paths, size)
    with progress("rates") as update:
        result = rates.measure(ckpt, str(checkpoint), images, str(data_root),
                               on_image=lambda done, total: update(done, total, paths[done - 1].name))
    rates.write(result, output)
    if as_json:
        click.echo(to_json(result.to_json()))
    else:
        t = Table(title=f"Firing rates of {checkpoint} ({result.weights}) over {result.images} images at "
                        f"{result.size}x{result.size}, T={result.T}", box=box.SIMPLE)
        for col in ("layer", "effective ops", "dense MACs", "rate"):
            t.add_column(col, justify="left" if col == "layer" else "right")
        for name, rate in result.rates.items():
            t.add_row(name, f"{result.effective[name]:,}", f"{result.dense[name]:,}", f"{rate:.4f}")
        console().print(t)
        summary = result.to_json()
        click.echo(f"{result.arch}: rate over all rated layers {summary['global_rate']:.4f} (the global rate giving "
                   f"the same ACs), neuron spike rate {summary['spike_rate']:.4f}")
    for line in rates.warning_lines(result):
        click.echo(line, err=True)
    note(f"wrote {output}", err=as_json)
