"""Training with the paper's recipe, scaled to a CPU.

1 - SSIM loss, AdamW at 1e-3, linear warm-up then cosine decay to 1e-7, random
64x64 crops with flips. Checkpoints are the project format and carry the optimizer
and sampler state, so a run resumes where it stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from neuro_deploy import zoo
from neuro_deploy.common import memory
from neuro_deploy.data import PairedDataset, evaluate
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.zoo.checkpoint import Checkpoint, read_checkpoint, save_checkpoint
from neuro_deploy.zoo.inference import derain_array
from neuro_deploy.zoo.memory import activation_bytes


@dataclass
class TrainConfig:
    arch: str
    model: dict[str, Any]
    data: str
    steps: int = 1000
    batch_size: int = 12
    crop: int = 64
    lr: float = 1e-3
    min_lr: float = 1e-7
    warmup_steps: int = 50
    weight_decay: float = 1e-2
    seed: int = 0
    save_every: int = 100
    val: str | None = None
    init: str | None = None  # checkpoint whose matching weights start the run (e.g. the float model)
    device: str = "cpu"  # where the steps run; crops are drawn on the CPU, so runs resume across devices


def check_config(cfg: TrainConfig) -> None:
    """Refuse options no run can use before any data is read or memory spent, each in one line."""
    positive = {"--steps": cfg.steps, "--batch-size": cfg.batch_size, "--save-every": cfg.save_every,
                "--dim": cfg.model.get("dim", 1), "--T": cfg.model.get("T", 4)}
    for option, value in positive.items():
        if value < 1:
            raise NeuroDeployError(f"{option} must be at least 1, got {value}")
    if cfg.crop < 8 or cfg.crop % 8:
        raise NeuroDeployError(f"--crop must be a positive multiple of 8 (three 2x downsamplings), got {cfg.crop}")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise NeuroDeployError(f"--lr must be a positive finite learning rate, got {cfg.lr}")
    if cfg.warmup_steps < 0:
        raise NeuroDeployError(f"--warmup must be 0 or more steps, got {cfg.warmup_steps}")
    for key in ("en_num_blocks", "de_num_blocks"):
        blocks = cfg.model.get(key, [1] * 4)
        if len(blocks) != 4 or min(blocks) < 1:
            option = "--en" if key.startswith("en") else "--de"
            raise NeuroDeployError(f"{option} must be 4 block counts of at least 1, got {','.join(map(str, blocks))}")
    try:
        device = torch.device(cfg.device)
    except RuntimeError:
        raise NeuroDeployError(f"--device {cfg.device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NeuroDeployError(f"--device {cfg.device}: no CUDA device is available")
    if device.type not in ("cpu", "cuda", "mps"):
        raise NeuroDeployError(f"--device {cfg.device}: training runs on cpu, cuda or mps")
    # forward activations, kept for the backward pass, and their gradients
    memory.check(2 * activation_bytes(cfg.arch, cfg.model, cfg.batch_size, cfg.crop),
                 f"training dim {cfg.model.get('dim')} with T={cfg.model.get('T', 4)} on batches of {cfg.batch_size} "
                 f"{cfg.crop}x{cfg.crop} crops", "lower --batch-size, --crop, --dim or --T")


def resumed_architecture(resume: str | Path, arch: str | None, given: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The architecture a run resumes with: the checkpoint's. Options given on the command line
    (`arch`, `given`) must agree with it; a disagreement is one line, not a list of tensors."""
    previous = read_checkpoint(resume)
    if arch is not None and arch != previous.arch:
        raise NeuroDeployError(f"--resume {resume} is a {previous.arch} run, not {arch}: drop --arch to resume it")
    differing = [f"{k}={v} (checkpoint: {previous.config.get(k)})" for k, v in given.items()
                 if previous.config.get(k) != v]
    if differing:
        raise NeuroDeployError(f"--resume {resume} was trained with another architecture: {'; '.join(differing)}; "
                               "drop these options to take the checkpoint's")
    return previous.arch, dict(previous.config)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up to `lr`, then cosine to `min_lr` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size, dtype=torch.float32) - size // 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean SSIM (Gaussian window 11, sigma 1.5, data range 1), differentiable."""
    c = pred.shape[1]
    w = _gaussian_window().to(pred).expand(c, 1, 11, 11)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, groups=c)

    mu_p, mu_t = blur(pred), blur(target)
    var_p = blur(pred * pred) - mu_p**2
    var_t = blur(target * target) - mu_t**2
    cov = blur(pred * target) - mu_p * mu_t
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return 1 - ssim_map.mean()


class CropSampler:
    """Random aligned crops with flips from a paired dataset held in memory."""

    def __init__(self, dataset: PairedDataset, crop: int, generator: torch.Generator) -> None:
        self.pairs = [(torch.from_numpy(r).permute(2, 0, 1), torch.from_numpy(c).permute(2, 0, 1))
                      for r, c, _ in (dataset[i] for i in range(len(dataset)))]
        small = [n for n, (r, _) in zip(dataset.names, self.pairs) if min(r.shape[1:]) < crop]
        if small:
            raise NeuroDeployError(f"training image {small[0]} is smaller than the {crop}x{crop} crop")
        self.crop = crop
        self.generator = generator

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator))

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        rainy, clean = [], []
        for _ in range(size):
            r, c = self.pairs[self._randint(len(self.pairs))]
            y, x = self._randint(r.shape[1] - self.crop + 1), self._randint(r.shape[2] - self.crop + 1)
            r, c = r[:, y:y + self.crop, x:x + self.crop], c[:, y:y + self.crop, x:x + self.crop]
            if self._randint(2):
                r, c = r.flip(2), c.flip(2)
            if self._randint(2):
                r, c = r.flip(1), c.flip(1)
            rainy.append(r)
            clean.append(c)
        return torch.stack(rainy), torch.stack(clean)


def validate(model: torch.nn.Module, root: str,
             on_image: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """Mean metrics of the model and of the rainy input itself on a paired dataset;
    `on_image(done, total)` follows the progress."""
    data = PairedDataset(root)
    model_scores, input_scores = [], []
    for i in range(len(data)):
        rainy, clean, _ = data[i]
        model_scores.append(evaluate(derain_array(model, rainy), clean))
        input_scores.append(evaluate(rainy, clean))
        if on_image is not None:
            on_image(i + 1, len(data))
    mean = {f"model_{k}": float(np.mean([s[k] for s in model_scores])) for k in model_scores[0]}
    mean.update({f"input_{k}": float(np.mean([s[k] for s in input_scores])) for k in input_scores[0]})
    mean["images"] = len(data)
    return mean


def _init_from(model: torch.nn.Module, path: str) -> dict[str, Any]:
    """Start from another checkpoint's weights where names and shapes match (a deployable
    variant from its float model: everything but the attention gates); say how many matched."""
    source = read_checkpoint(path).state_dict
    own = model.state_dict()
    shared = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    if not shared:
        raise NeuroDeployError(f"--init {path}: no weights match the network being trained")
    model.load_state_dict(shared, strict=False)
    return {"path": str(path), "matched": len(shared), "tensors": len(own),
            "parameters": sum(v.numel() for v in shared.values()), "of_parameters": sum(v.numel() for v in own.values())}


def train(
    cfg: TrainConfig,
    out: str | Path,
    resume: str | Path | None = None,
    on_step: Callable[[int, float, float], None] | None = None,
) -> Checkpoint:
    """Train (or resume) and write the checkpoint to `out` every `save_every` steps and at the end."""
    check_config(cfg)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    model = zoo.build(cfg.arch, **cfg.model).to(device)  # before the optimizer, whose state follows it
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    step, elapsed, losses, initialised = 0, 0.0, [], None
    if cfg.init and resume is None:
        initialised = _init_from(model, cfg.init)
    if resume is not None:
        previous = read_checkpoint(resume, cfg.arch)
        if previous.training_state is None:
            raise NeuroDeployError(f"{resume} holds no training state to resume from")
        zoo.load_weights(model, previous.state_dict, str(resume))
        initialised = previous.meta.get("init")
        state = previous.training_state
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        step, elapsed, losses = int(state["step"]), float(state["elapsed_s"]), list(state["losses"])
    sampler = CropSampler(PairedDataset(cfg.data), cfg.crop, generator)

    def checkpoint(final: bool) -> Checkpoint:
        meta = {"train": asdict(cfg), "steps_done": step, "train_time_s": round(elapsed, 1),
                "final_loss": losses[-1] if losses else None, "torch": str(torch.__version__),
                **({"init": initialised} if initialised else {})}
        training_state = {"optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                          "step": step, "elapsed_s": elapsed, "losses": losses}
        if final and cfg.val:
            meta["validation"] = validate(model.cpu().eval(), cfg.val)
        weights = {k: v.cpu() for k, v in model.state_dict().items()}
        ckpt = Checkpoint(cfg.arch, dict(cfg.model), weights, meta, training_state)
        save_checkpoint(out, ckpt)
        return ckpt

    model.train()
    while step < cfg.steps:
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        rainy, clean = sampler.batch(cfg.batch_size)
        loss = ssim_loss(model(rainy.to(device)), clean.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        elapsed += time.perf_counter() - started
        losses.append(round(float(loss), 5))
        if on_step is not None:
            on_step(step, float(loss), optimizer.param_groups[0]["lr"])
        if step % cfg.save_every == 0 and step < cfg.steps:
            checkpoint(final=False)
    return checkpoint(final=True)
