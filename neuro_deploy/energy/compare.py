"""The paper's efficiency comparison: VLIFNet vs ESDNet, spiking vs ANN, conventions vs Loihi.

For each network (the release configuration with random weights, and the shipped small
checkpoints) the float model is run once on a crop of the bundled rainy image, with exact
counts from hooks (no scaling by area), and priced under the activity-based convention, the
strict one and as an ANN (the paper's own global-rate method is `analytic.py`). The shipped
small networks are also converted and run in fixed point, and the deployed network's events
are priced on the Loihi profile.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from rich import box
from rich.table import Table

from neuro_deploy import zoo
from neuro_deploy.common import memory, resources
from neuro_deploy.compile.convert import BUNDLED_CALIBRATION, calibration_images, convert, write
from neuro_deploy.counting.counts import Counts
from neuro_deploy.counting.hooks import CONVENTIONS, FloatCounts, count_float
from neuro_deploy.counting.run import count_network
from neuro_deploy.energy.loihi2 import priced_report
from neuro_deploy.energy.profiles import Profile
from neuro_deploy.energy.rates import weights_status
from neuro_deploy.energy.report import format_energy
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx import read_network
from neuro_deploy.zoo.checkpoint import resolve_checkpoint
from neuro_deploy.zoo.memory import inference_bytes

RELEASE = {"dim": 48, "en_num_blocks": [4, 4, 8, 8], "de_num_blocks": [2, 2, 2, 2], "T": 4}
PAPER_RATIO = 0.13  # the seed paper: VLIFNet needs 13% of ESDNet's energy
DEFAULT_IMAGE = BUNDLED_CALIBRATION / "rain_demo.png"
RANDOM_WEIGHTS = "random init (seed 0)"
RANDOM_NOTE = f"{RANDOM_WEIGHTS}: firing rates, and so the spiking energies, mean little"


@dataclass
class Entry:
    setting: str  # "release" or "small"
    arch: str
    config: dict[str, Any]
    weights: str
    size: int
    counts: FloatCounts
    energy_pj: dict[str, float]  # per convention
    random_weights: bool  # random (untrained) weights: its firing rates, and spiking energies, mean little
    deployed: dict[str, Any] | None = None  # the Loihi-profile total of the converted network

    def to_json(self) -> dict[str, Any]:
        return {"setting": self.setting, "arch": self.arch, "config": self.config, "weights": self.weights,
                "random_weights": self.random_weights, "size": self.size, "energy_pj": self.energy_pj,
                "dead": self.counts.dead(), "silent_neurons": self.counts.silent_neurons,
                "counts": self.counts.to_json(), "deployed": self.deployed}


@dataclass
class Comparison:
    entries: list[Entry] = field(default_factory=list)
    profile: str = ""
    loihi_profile: str = ""
    image: str = ""

    def random_weights(self, setting: str) -> list[str]:
        """The networks of `setting` with random (untrained) weights."""
        return [e.arch for e in self.entries if e.setting == setting and e.random_weights]

    def ratios(self, setting: str) -> dict[str, float]:
        """VLIFNet / ESDNet energy per convention (and on Loihi, when both were deployed)."""
        by_arch = {e.arch: e for e in self.entries if e.setting == setting}
        if set(by_arch) != {"vlifnet", "esdnet"}:
            return {}
        v, e = by_arch["vlifnet"], by_arch["esdnet"]
        ratios = {c: v.energy_pj[c] / e.energy_pj[c] for c in CONVENTIONS if e.energy_pj[c]}
        if v.deployed and e.deployed and e.deployed["energy_pj"]:
            ratios["loihi"] = v.deployed["energy_pj"] / e.deployed["energy_pj"]
        return ratios

    def to_json(self) -> dict[str, Any]:
        settings = sorted({e.setting for e in self.entries})
        return {"profile": self.profile, "loihi_profile": self.loihi_profile, "image": self.image,
                "paper_ratio": PAPER_RATIO, "entries": [e.to_json() for e in self.entries],
                "ratios": {s: self.ratios(s) for s in settings}}


def _price(counts: FloatCounts, profile: Profile) -> dict[str, float]:
    for term in ("ac", "mac"):
        if term not in profile.terms:
            raise NeuroDeployError(f"profile {profile.name} has no {term!r} term: the conventions need AC and MAC")
    return {c: sum(n * profile.terms[t].pj for t, n in counts.convention(c).items()) for c in CONVENTIONS}


def _weights_note(ckpt: zoo.Checkpoint) -> str:
    steps = ckpt.meta.get("steps_done")
    name = Path(ckpt.path or "").name
    start = ckpt.meta.get("train", {}).get("init")
    # a bundled model is named; the path of another machine's file means nothing to the reader
    known = start and resources.bundled_model(Path(start).stem) is not None
    after = f" after init from {Path(start).stem}" if known else " after init from another checkpoint" if start else ""
    return f"trained ({steps} steps{after}): {name}" if steps else f"{name} ({weights_status(ckpt)[0]})"


def _deploy(checkpoint: Path, image: torch.Tensor, size: int, profile: Profile) -> dict[str, Any]:
    """Convert a checkpoint at `size`, run it on the fast back end and price its events (with a
    profile that has static power, also the plan's chips and time and the static energy)."""
    with tempfile.TemporaryDirectory(prefix="neuro-deploy-compare-") as d:
        net_path = Path(d) / f"{checkpoint.stem}.net"
        write(convert(checkpoint, size=size), net_path)
        net = read_network(net_path)
        counts: Counts = count_network(net, image[0].numpy())
        report = priced_report(net, counts, [profile])
    total = report["total"]
    deployed = {"checkpoint": str(checkpoint), "host_layers": net.meta["host_layers"], "steps": counts.steps,
                "energy_pj": total["energy_pj"][profile.name], "unpriced": total["unpriced"][profile.name],
                "synops": total["synops"], "macs": total["macs"], "neuron_updates": total["neuron_updates"]}
    if "deployment" in report:
        deployed.update(static_energy_pj=total["static_energy_pj"][profile.name],
                        dynamic_energy_pj=total["dynamic_energy_pj"][profile.name],
                        chips=report["deployment"]["chips"], cores=report["deployment"]["cores"],
                        time_s=report["deployment"]["run_time_s"])
    return deployed


def _check_memory(small: dict[str, Path], release_size: int | None, small_size: int) -> None:
    """Refuse sizes whose float forward passes would not fit, before any network runs: the
    largest no-grad forward of the release configurations (when run) and the small checkpoints
    (the release ESDNet's at 256x256: 2.2 GiB estimated; the whole comparison peaked at 1.74 GiB)."""
    needs = {f"the release {arch} at {release_size}x{release_size}":
             inference_bytes(arch, RELEASE, (release_size, release_size))
             for arch in (("vlifnet", "esdnet") if release_size is not None else ())}
    for arch, path in small.items():
        ckpt = zoo.read_checkpoint(path, arch)
        needs[f"{arch} at {small_size}x{small_size}"] = inference_bytes(ckpt.arch, ckpt.config,
                                                                        (small_size, small_size))
    what, most = max(needs.items(), key=lambda item: item[1])
    memory.check(most, f"compare ({what})", "lower --size or --release-size, or give --no-release")


def run_comparison(small: dict[str, Path], deployable: Path | None, profile: Profile, loihi: Profile,
                   image_path: Path = DEFAULT_IMAGE, release_size: int = 256, small_size: int = 64,
                   release: bool = True, on_stage: Callable[[str], None] = lambda _: None) -> Comparison:
    """`small`: arch -> checkpoint of the shipped small networks; `deployable`: the checkpoint
    deployed for VLIFNet on Loihi (the float VLIFNet has gates and products that run on the host)."""
    for size in (release_size, small_size):
        if size <= 0 or size % 8:
            raise NeuroDeployError(f"image size {size}: must be a positive multiple of 8")
    small = {arch: resolve_checkpoint(path) for arch, path in small.items()}  # a bundled model's name, or a path
    deployable = resolve_checkpoint(deployable) if deployable else None
    for path in (*small.values(), *([deployable] if deployable else [])):
        if not Path(path).is_file():
            raise NeuroDeployError(f"checkpoint not found: {path}")
    _check_memory(small, release_size if release else None, small_size)
    result = Comparison(profile=profile.name, loihi_profile=loihi.name, image=str(image_path))
    if release:
        image = calibration_images(image_path, release_size)[:1]
        for arch in ("vlifnet", "esdnet"):
            on_stage(f"{arch} release configuration at {release_size}x{release_size}")
            torch.manual_seed(0)
            model = zoo.build(arch, **RELEASE)
            counts = count_float(model, image)
            result.entries.append(Entry("release", arch, dict(RELEASE), RANDOM_WEIGHTS, release_size, counts,
                                        _price(counts, profile), random_weights=True))
    image = calibration_images(image_path, small_size)[:1]
    for arch, path in small.items():
        on_stage(f"{arch} {path.name} at {small_size}x{small_size}")
        ckpt = zoo.read_checkpoint(path, arch)
        counts = count_float(zoo.build_from(ckpt), image)
        entry = Entry("small", arch, ckpt.config, _weights_note(ckpt), small_size, counts, _price(counts, profile),
                      random_weights=weights_status(ckpt)[1])
        target = deployable if arch == "vlifnet" and deployable is not None else path
        on_stage(f"deploying {target.name} (fixed point, fast back end)")
        entry.deployed = _deploy(target, image, small_size, loihi)
        result.entries.append(entry)
    return result


def _config_text(config: dict[str, Any]) -> str:
    text = f"dim {config.get('dim')} en {config.get('en_num_blocks')} de {config.get('de_num_blocks')}"
    if config.get("attention") is False:
        text += " deployable"
    return text


def comparison_table(result: Comparison) -> Table:
    t = Table(title=f"VLIFNet vs ESDNet energy per image ({result.profile}; deployed on {result.loihi_profile})",
              box=box.SIMPLE)
    for col in ("setting", "network", "weights", "flags", "input", "spike rate", "activity", "strict", "ANN",
                f"deployed ({result.loihi_profile})"):
        t.add_column(col, justify="left" if col in ("setting", "network", "weights", "flags") else "right")
    for e in result.entries:
        deployed = "-"
        if e.deployed:
            deployed = format_energy(e.deployed["energy_pj"])
            if e.deployed["unpriced"]:
                deployed += "*"
            if "static_energy_pj" in e.deployed:
                d = e.deployed
                deployed += (f" (dynamic {format_energy(d['dynamic_energy_pj'])} + static "
                             f"{format_energy(d['static_energy_pj'])}: {d['chips']} chip(s), {d['cores']:,} cores, "
                             f"{d['time_s'] * 1e3:,.1f} ms)")
        flags = ", ".join(filter(None, ["RANDOM WEIGHTS" if e.random_weights else "",
                                        f"{len(e.counts.dead())} dead" if e.counts.dead() else ""])) or "-"
        t.add_row(e.setting, f"{e.arch} ({_config_text(e.config)})", e.weights, flags,
                  f"{e.size}x{e.size}, T={e.config.get('T', 4)}", f"{e.counts.spike_rate:.4f}",
                  *[format_energy(e.energy_pj[c]) for c in CONVENTIONS], deployed)
    return t


def comparison_lines(result: Comparison) -> list[str]:
    """The ratios next to the paper's, and what the deployed numbers leave out."""
    lines = []
    for setting in ("release", "small"):
        ratios = result.ratios(setting)
        if ratios:
            deployed = [e.deployed for e in result.entries if e.setting == setting and e.deployed]
            partial = any(d["unpriced"] for d in deployed)  # the ratio leaves the unpriced terms out
            parts = ", ".join(f"{k} {v:.1%}{'*' if k == 'loihi' and partial else ''}" for k, v in ratios.items())
            random = result.random_weights(setting)
            size = next(e.size for e in result.entries if e.setting == setting)
            if random:  # never beside the paper's claim without saying so
                lines.append(f"VLIFNet/ESDNet ({setting}, RANDOM WEIGHTS: {', '.join(random)}): {parts}  "
                             f"(random weights: not comparable with the paper's {PAPER_RATIO:.0%})")
            else:
                lines.append(f"VLIFNet/ESDNet ({setting}): {parts}  (counted on a run at {size}x{size}, not the "
                             f"paper's global-rate formula: not comparable with its {PAPER_RATIO:.0%}; "
                             "`compare --analytic --preset paper`)")
    for e in result.entries:
        dead = e.counts.dead()
        if dead:
            lines.append(f"warning: {e.setting} {e.arch}: {len(dead)} dead layers (no non-zero input on this image): "
                         f"{', '.join(dead)}")
        spiking = e.energy_pj["activity"]
        if e.energy_pj["ann"]:
            lines.append(f"{e.setting} {e.arch}: activity-based SNN / ANN = {spiking / e.energy_pj['ann']:.1%}")
        if e.deployed:
            d = e.deployed
            note = f"deployed {Path(d['checkpoint']).name}: {d['steps']} steps, {d['host_layers']} host layers"
            if d["unpriced"]:
                note += "; * unpriced on " + result.loihi_profile + ": " + ", ".join(
                    f"{n:,} {k}" for k, n in d["unpriced"].items())
            lines.append(note)
    if any(e.setting == "release" for e in result.entries):
        lines.append(f"release configuration: {RANDOM_NOTE}; counts are exact at every border (no area scaling); "
                     "not deployed (no deployable release checkpoint)")
    lines.append("activity: first conv and post-mean layers as MAC, spiking body as AC per measured non-zero input "
                 "(not the paper's global-rate method: `compare --analytic`); strict: binary inputs as AC, real-valued "
                 "ones as MAC, all-zero (silent) ones as nothing (NeuroBench); ANN: every op a MAC, once instead of T times")
    return lines


def measured_comparison(vlifnet: Path | None, esdnet: Path | None, deployable: Path | None, profile: Profile,
                        loihi: Profile, image_path: Path | None, release_size: int, small_size: int | None,
                        release: bool, on_stage: Callable[[str], None] = lambda _: None
                        ) -> tuple[dict[str, Any], list[Table], list[str]]:
    """`compare` without --analytic: its JSON, table and summary lines (the bundled small models where
    a checkpoint is not given, at 64x64 unless `small_size` says otherwise)."""
    result = run_comparison({"vlifnet": vlifnet or Path("vlifnet_small"), "esdnet": esdnet or Path("esdnet_small")},
                            deployable, profile, loihi, image_path or DEFAULT_IMAGE, release_size,
                            64 if small_size is None else small_size, release, on_stage)
    return result.to_json(), [comparison_table(result)], comparison_lines(result)
