"""A plan as people read it: the per-layer table, the summary lines and the picture of cores and budgets."""

from __future__ import annotations

import warnings
from pathlib import Path

from rich import box
from rich.table import Table

from neuro_deploy.common.atomic import atomic_path, check_plot_path
from neuro_deploy.deploy.plan import USES, Plan
from neuro_deploy.loihi.budgets import BUDGETS, CORES_PER_CHIP


def _percent(used: int, name: str) -> str:
    return f"{used:,} ({used / BUDGETS[name].value:.0%})"


def table(plan: Plan) -> Table:
    t = Table(title=f"{plan.network}: Loihi 2 plan ({plan.activity})", box=box.SIMPLE)
    for col in ("index", "name", "placement", "neurons", "cores", "block", *USES, "core time"):
        t.add_column(col, justify="left" if col in ("name", "placement", "block") else "right")
    for lp in plan.layers:
        uses = [_percent(lp.use[k], k) if lp.cores else "-" for k in USES]
        t.add_row(str(lp.index), lp.name, lp.placement, f"{lp.neurons:,}", str(lp.cores), lp.block_label, *uses,
                  f"{lp.core_ns / 1e3:.1f} us" if lp.cores else "-")
    t.add_row("", "total", "", f"{sum(lp.neurons for lp in plan.layers if lp.cores):,}", str(plan.cores),
              *[""] * (len(USES) + 2))
    return t


def summary_lines(plan: Plan) -> list[str]:
    """Cores, chips, the board and whether it fits, the layers that take most cores, and the time."""
    verdict = "fits" if plan.fits else f"does not fit: it needs {plan.chips} chips, {plan.chips_available} available"
    lines = [f"{plan.cores:,} cores on {plan.chips} chip(s) of {int(CORES_PER_CHIP.value)} cores; "
             f"{plan.board} ({plan.chips_available} chip(s)): {verdict}"]
    top = ", ".join(f"{lp.name} {lp.cores} ({lp.cores / plan.cores:.0%})" for lp in plan.dominant())
    lines.append(f"most cores: {top}")
    per_s = f"{1 / plan.image_time_s:,.1f}" if plan.image_time_s else "-"
    lines.append(f"time ({plan.activity}): {plan.step_time_s * 1e6:,.1f} us per step (busiest core {plan.busiest}, "
                 f"mesh {plan.mesh_ns / 1e3:.2f} us, barrier included); {plan.steps_per_tile} steps x {plan.tiles} "
                 f"tile(s) = {plan.image_time_s * 1e3:,.3f} ms per image, {per_s} images/s "
                 "(Loihi 1 per-operation times, Davies 2018)")
    return lines


def plot(plan: Plan, path: str | Path) -> None:
    """Cores per layer, and each budget's use on the layer's fullest core (percent of the budget)."""
    check_plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = [lp for lp in plan.layers if lp.cores]
    labels = [f"{lp.index} {lp.name[-36:]}" for lp in layers]
    fig, (ax_cores, ax_use) = plt.subplots(1, 2, figsize=(12, 1.5 + 0.22 * len(layers)), sharey=True)
    ax_cores.barh(range(len(layers)), [lp.cores for lp in layers], color="tab:blue")
    ax_cores.set_xlabel("cores")
    ax_cores.set_title(f"{plan.cores:,} cores, {plan.chips} chip(s): {plan.board} "
                       f"{'fits' if plan.fits else 'does not fit'}", fontsize=9)
    height = 0.8 / len(USES)
    for j, name in enumerate(USES):
        values = [100 * lp.use[name] / BUDGETS[name].value for lp in layers]
        ax_use.barh([i - 0.4 + (j + 0.5) * height for i in range(len(layers))], values, height=height, label=name)
    ax_use.axvline(100, color="black", linewidth=0.8)
    ax_use.set_xlabel("use of the core's budget (%), fullest core")
    ax_use.legend(fontsize=7, loc="lower right")
    ax_cores.set_yticks(range(len(layers)), labels, fontsize=6)
    ax_cores.invert_yaxis()
    fig.suptitle(f"{Path(plan.network).name}: Loihi 2 plan", fontsize=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lower().lstrip("."), dpi=120, bbox_inches="tight")
    plt.close(fig)
