"""The demo command: the main job on bundled data, from derain to the paper's comparison."""

from __future__ import annotations

from pathlib import Path

import click

from neuro_deploy.cli.base import BUNDLED_DEPLOYABLE, BUNDLED_MODEL, cli
from neuro_deploy.common import resources
from neuro_deploy.common.atomic import check_outputs
from neuro_deploy.energy.profiles import DEFAULT_PROFILES

from neuro_deploy.cli.compile import convert
from neuro_deploy.cli.energy import compare
from neuro_deploy.cli.models import derain
from neuro_deploy.cli.run import simulate


@cli.command()
@click.option("--model", "model_path", default=BUNDLED_MODEL, show_default=True, type=click.Path(path_type=Path))
@click.option("--deployable", "deployable_path", default=BUNDLED_DEPLOYABLE, show_default=True,
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
    inputs, targets = resources.demo_folder("input"), resources.demo_folder("target")
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
    ctx.invoke(compare, vlifnet_path=Path("vlifnet_small"), esdnet_path=Path("esdnet_small"),
               deployable_path=deployable_path, image_path=None, size=64, release_size=256, no_release=False,
               profile="cmos45_fp32", loihi_profile="loihi2", fmt="table",
               json_out=output_dir / "compare.json")
