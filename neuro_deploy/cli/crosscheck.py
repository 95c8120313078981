"""The cross-check group: our counts against SANA-FE and NeuroBench optional extras."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich import box
from rich.table import Table

from neuro_deploy.cli.base import EXIT_FAILURE, cli, console, to_json
from neuro_deploy.common.atomic import check_inputs
from neuro_deploy.common.progress import progress


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
    from neuro_deploy.crosscheck.sanafe import TERMS, check_file
    from neuro_deploy.energy.report import format_energy

    check_inputs([network, input_path])
    with progress("cross-check sanafe") as update:  # phases and steps; refused first if it cannot fit in memory
        result = check_file(network, input_path, steps, profile, chips, on_progress=update)
    if fmt == "json":
        click.echo(to_json(result.to_json()))
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
        console().print(table)
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
    from neuro_deploy.crosscheck.neurobench import DEFAULT_IMAGE, check_checkpoint, summary_lines

    check_inputs([image_path])
    names = checkpoints or (Path("vlifnet_small_deployable"), Path("vlifnet_small"), Path("esdnet_small"))
    results = []
    with progress("cross-check neurobench") as update:
        for i, checkpoint in enumerate(names):
            results.append(check_checkpoint(checkpoint, size, image_path or DEFAULT_IMAGE))
            update(i + 1, len(names))
    if fmt == "json":
        click.echo(to_json([r.to_json() for r in results]))
    else:
        for result in results:
            click.echo("\n".join(summary_lines(result, per_layer)))
    differing = [r.network for r in results if r.mismatches]
    if differing:
        click.echo(f"cross-check failed: layers differ from NeuroBench in {', '.join(differing)}", err=True)
        sys.exit(EXIT_FAILURE)
