"""Commands on what a network needs on Loihi: inspect, plan, view."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich import box
from rich.table import Table

from neuro_deploy.cli.base import cli, console, note
from neuro_deploy.common.atomic import check_inputs, check_outputs, check_plot_path
from neuro_deploy.common.progress import progress


@cli.command()
@click.argument("network", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the layers as a JSON list.")
@click.option("--skip-layer", "skip_layers", multiple=True, metavar="TYPE",
              help="Plain netx file: leave out its trailing layers of this type (e.g. average, which netx cannot "
                   "build); repeat for several.")
def inspect(network: Path, as_json: bool, skip_layers: tuple[str, ...]) -> None:
    """Layers of a network description (ours or any netx file) with totals."""
    import json

    from neuro_deploy.deploy.inspect import COLUMNS, describe

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
    console().print(table)
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
        check_plot_path(plot)
    result = make_plan(network, skip_first, board, chips, input_path, steps)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=1))
    else:
        console().print(render.table(result))
        click.echo("\n".join(render.summary_lines(result)))
    if plot is not None:
        render.plot(result, plot)
        note(f"wrote {plot}", err=fmt != "table")
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
    from neuro_deploy.deploy.onnx_view import check_port, export

    output = output or network.with_suffix(".onnx")
    check_outputs([output], [network, energy_report])
    check_inputs([network, energy_report])
    if not export_only:
        check_port(port)
    with progress("view", logs=False) as update:
        export(network, output, energy_report, update, with_plan)
    note(f"wrote {output}")
    if export_only:
        return
    import netron

    address = netron.start(str(output), address=("localhost", port), browse=not no_browser)
    host, bound = address if isinstance(address, tuple) else ("localhost", port)
    click.echo(f"netron serving at http://{host}:{bound} (Ctrl-C to stop)")
    netron.wait()
