"""Commands on the float PyTorch networks and their data: derain, train, synth-rain."""

from __future__ import annotations

from pathlib import Path

import click

from neuro_deploy.cli.base import cli, format_metrics, int_list, note, to_json, typed_options
from neuro_deploy.common.atomic import check_inputs, check_outputs
from neuro_deploy.common.progress import progress
from neuro_deploy.errors import NeuroDeployError


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
    from neuro_deploy import zoo
    from neuro_deploy.common import memory
    from neuro_deploy.common.tile_grid import tile_shape
    from neuro_deploy.data import evaluate, image_format, read_image, write_image
    from neuro_deploy.zoo.inference import derain_array
    from neuro_deploy.zoo.memory import inference_bytes

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
    memory.check(inference_bytes(ckpt.arch, ckpt.config, (h, w)), f"derain with {h}x{w} tiles", "lower --tile")
    model = zoo.build_from(ckpt)
    with progress("derain") as update:
        result = derain_array(model, rainy, tile, overlap, on_tile=update)
    write_image(output, result)
    note(f"wrote {output}", err=as_json)
    scores = {"output": str(output)}
    if clean is not None:
        scores.update(input=evaluate(rainy, clean), derained=evaluate(result, clean))
    if as_json:
        click.echo(to_json(scores))
    elif clean is not None:
        click.echo(f"rainy input : {format_metrics(scores['input'])}")
        click.echo(f"derained    : {format_metrics(scores['derained'])}")


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
    from neuro_deploy.zoo.train import TrainConfig, resumed_architecture
    from neuro_deploy.zoo.train import train as run_training

    model = {"dim": dim, "en_num_blocks": int_list(en_blocks), "de_num_blocks": int_list(de_blocks), "T": timesteps}
    if arch == "vlifnet":
        model["use_refinement"] = refinement
        if deployable:
            model.update(attention=False, enhance_product=False)
    elif deployable:
        raise NeuroDeployError("--deployable applies to vlifnet only")
    if resume is not None:  # the checkpoint's architecture; options typed on the command line must agree
        typed = typed_options()
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
    note(f"wrote {output} after {ckpt.meta['steps_done']} steps ({ckpt.meta['train_time_s']} s)")
    if init_path is not None and "init" in ckpt.meta:
        i = ckpt.meta["init"]
        click.echo(f"started from {init_path}: {i['matched']} of {i['tensors']} weight tensors matched "
                   f"({i['parameters']} of {i['of_parameters']} values)")
    if "validation" in ckpt.meta:
        v = ckpt.meta["validation"]
        click.echo(f"held-out: input PSNR {v['input_psnr']:.2f} dB -> model {v['model_psnr']:.2f} dB, "
                   f"SSIM {v['input_ssim']:.4f} -> {v['model_ssim']:.4f}")


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
    note(f"wrote {len(paths)} pairs under {output}")
