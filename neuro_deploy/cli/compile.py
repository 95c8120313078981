"""Commands that compile a network to a file: convert checkpoint or NIR, export NIR."""

from __future__ import annotations

from pathlib import Path

import click
from rich import box
from rich.table import Table

from neuro_deploy.cli.base import cli, console, note, to_json
from neuro_deploy.common.atomic import check_inputs, check_outputs
from neuro_deploy.common.progress import progress
from neuro_deploy.errors import NeuroDeployError


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
    from neuro_deploy.compile import convert as conversion

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
        click.echo(to_json({"output": str(output), "layers": report, "host_layers": meta["host_layers"],
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
    console().print(table)
    note(f"wrote {output}: {len(report)} layers ({meta['host_layers']} on the host), input {meta['input_shape']}, "
          f"{meta['steps']} steps per tile (the output's latency: {meta['latency']})")
    for violation in meta["violations"]:
        click.echo(f"violates Loihi's limits: {violation}", err=True)


def _convert_nir(model: Path, output: Path, calibrate: Path | None, dt: float | None, as_json: bool) -> None:
    """`convert MODEL.nir`: the NIR front end (neuro_deploy/compile/nir_convert.py), a plain netx file out."""
    from neuro_deploy.compile.nir_convert import convert_nir

    check_inputs([model, calibrate])
    result = convert_nir(model, output, calibrate, dt)
    summary = {"output": str(output), "dt": result.chain.dt, "dt_source": result.dt_source,
               "calibrated": result.calibrated, "input_shape": list(result.chain.input_shape),
               "layers": [{"node": s.name, "kind": s.neuron.kind, "synapse": layer.kind, "shape": list(layer.shape),
                           "scale": scale, "vth": layer.vth, "v_decay": layer.v_decay, "i_decay": layer.i_decay}
                          for s, layer, scale in zip(result.chain.stages, result.layers, result.scales)]}
    if as_json:
        click.echo(to_json(summary))
        return
    click.echo(f"dt = {result.chain.dt:g} s ({result.dt_source})")
    for layer in summary["layers"]:
        click.echo(f"  {layer['node']}: {layer['kind']} via {layer['synapse']} {layer['shape']}, vth {layer['vth']}, "
                   f"vDecay {layer['v_decay']}, iDecay {layer['i_decay']}, {layer['scale']:.4g} units per unit")
    note(f"wrote {output}: a plain netx file of {len(result.layers)} layers, input {summary['input_shape']}"
          f"{'' if result.calibrated else ' (no --calibrate: state ranges bounded from the weights)'}")


@cli.command()
@click.argument("network", type=click.Path(path_type=Path))
@click.option("--nir", "nir_path", required=True, type=click.Path(path_type=Path), help="NIR graph to write (.nir).")
@click.option("--dt", default=1e-4, show_default=True, type=float, help="The time step the NIR time constants assume.")
def export(network: Path, nir_path: Path, dt: float) -> None:
    """Write a network file (plain netx, or the CUBA-LIF layers of a converted one) as a NIR graph."""
    from neuro_deploy.formats.netx import read_network
    from neuro_deploy.formats.nir_write import export_nir, write_nir

    check_inputs([network])
    check_outputs([nir_path], [network])
    if not dt > 0:
        raise NeuroDeployError(f"--dt {dt}: expected a positive number of seconds")
    result = export_nir(read_network(network), dt)
    write_nir(result.graph, nir_path)
    note(f"wrote {nir_path}: {result.layers} neuron layers at dt {dt:g} s")
    if result.left_out:
        click.echo(f"not exported (NIR has no primitive for them): {'; '.join(result.left_out)}", err=True)
