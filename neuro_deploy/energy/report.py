"""Price counts on hardware profiles and render the per-layer energy report (table, CSV, JSON, plot)."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from neuro_deploy.common.atomic import atomic_path, check_plot_path
from neuro_deploy.counting.counts import KINDS, Counts, LayerCounts
from neuro_deploy.energy.deployment import Deployment, active_core_pj, static_pj
from neuro_deploy.energy.profiles import Profile
from neuro_deploy.errors import NeuroDeployError


#: each count and the profile terms that can price it, in order of preference
PRICING: dict[str, tuple[str, ...]] = {
    "synops_binary": ("synop", "ac"),
    "synops_nonbinary": ("synop_graded", "mac"),
    "macs": ("mac",),
    "updates_active": ("neuron_update_active", "neuron_update"),
    "updates_inactive": ("neuron_update_inactive", "neuron_update"),
    "spikes": ("spike",),
}


def layer_terms(layer: LayerCounts) -> dict[str, int]:
    """The priced quantities of a layer. Spikes are the events neurocore layers send."""
    return {
        "synops_binary": layer.total("synops_binary"),
        "synops_nonbinary": layer.total("synops_graded") + layer.total("synops_real"),
        "macs": layer.total("macs"),
        "updates_active": layer.total("updates_active"),
        "updates_inactive": layer.total("updates_inactive"),
        "spikes": layer.total("spikes_out") if layer.placement == "neurocore" else 0,
    }


def price(quantities: dict[str, int], profile: Profile) -> tuple[float, dict[str, int], list[str]]:
    """(energy in pJ, unpriced quantities, quantities an all-in figure includes)."""
    energy, unpriced, included = 0.0, {}, []
    for key, n in quantities.items():
        if not n:
            continue
        term = next((t for t in PRICING[key] if t in profile.terms), None)
        if term is not None:
            energy += n * profile.terms[term].pj
        elif any(t in profile.covered for t in PRICING[key]):
            included.append(key)
        else:
            unpriced[key] = n
    return energy, unpriced, included


def _summary(layers: list[LayerCounts]) -> dict[str, Any]:
    def total(key: str) -> int:
        return sum(layer.total(key) for layer in layers)

    return {
        "neurons": sum(layer.neurons for layer in layers),
        "spikes_out": total("spikes_out"),
        "input_events": {k: total(f"in_{k}") for k in KINDS},
        "synops": sum(layer.synops for layer in layers),
        "synops_by_kind": {k: total(f"synops_{k}") for k in KINDS},
        "macs": total("macs"),
        "neuron_updates": sum(layer.neuron_updates for layer in layers),
        "neuron_updates_active": total("updates_active"),
    }


def build_report(counts: Counts, profiles: list[Profile], images: int = 1,
                 deployment: Deployment | None = None) -> dict[str, Any]:
    """The JSON-ready report: per layer (with per-step counts), totals, and the profiles used.

    A profile with deployment terms (static power, active cores) needs the run's `deployment`:
    each layer's energy then includes its cores' overhead, and the total the chips' static energy."""
    planned = [p for p in profiles if p.deployment]
    if planned and deployment is None:
        raise NeuroDeployError(f"profile {planned[0].name} prices static power and active cores: its report needs "
                               "the network's deployment plan (neuro_deploy.energy.loihi2.priced_report)")
    layers = []
    for layer in counts.layers:
        row: dict[str, Any] = {"index": layer.index, "name": layer.name, "type": layer.type,
                               "placement": layer.placement, **_summary([layer]),
                               "firing_rate": layer.firing_rate, "energy_pj": {}, "unpriced": {}, "included": {}}
        if deployment is not None:
            row["cores"] = deployment.cores_by_layer.get(layer.name, 0)
            row["active_core_pj"] = {p.name: active_core_pj(p, deployment, layer.name) for p in planned}
        for p in profiles:
            energy, unpriced, included = price(layer_terms(layer), p)
            row["energy_pj"][p.name] = energy + row.get("active_core_pj", {}).get(p.name, 0.0)
            row["unpriced"][p.name] = unpriced
            row["included"][p.name] = included
        row["per_step"] = {key: values.tolist() for key, values in layer.per_step.items()}
        layers.append(row)
    total = _summary(counts.layers)
    dynamic = {p.name: sum(r["energy_pj"][p.name] for r in layers) for p in profiles}
    total["energy_pj"] = dict(dynamic)
    if deployment is not None:
        total["static_energy_pj"] = {p.name: static_pj(p, deployment) for p in planned}
        total["dynamic_energy_pj"] = {p.name: dynamic[p.name] for p in planned}
        total["active_core_pj"] = {p.name: sum(r["active_core_pj"][p.name] for r in layers) for p in planned}
        for name, static in total["static_energy_pj"].items():
            total["energy_pj"][name] += static
    total["energy_per_image_pj"] = {name: e / images for name, e in total["energy_pj"].items()}
    total["unpriced"] = {}
    for p in profiles:
        merged: dict[str, int] = {}
        for r in layers:
            for key, n in r["unpriced"][p.name].items():
                merged[key] = merged.get(key, 0) + n
        total["unpriced"][p.name] = merged
    for r in layers:  # a layer's share of the layers' energy (static energy is the chips', no layer's)
        r["share"] = {name: (r["energy_pj"][name] / e if e else 0.0) for name, e in dynamic.items()}
    return {"network": counts.network, "steps": counts.steps, "runs": counts.runs, "images": images,
            "layers": layers, "total": total, "profiles": {p.name: p.to_json() for p in profiles},
            **({"deployment": deployment.to_json()} if deployment is not None else {})}


def format_energy(pj: float) -> str:
    for unit, scale in (("J", 1e12), ("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if pj >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"


def _energy_cell(row: dict[str, Any], profile: str) -> str:
    return format_energy(row["energy_pj"][profile]) + ("*" if row["unpriced"][profile] else "")


def table(report: dict[str, Any]) -> Table:
    """Per layer (with its cores when a plan priced the run), a static row for the chips, and the total."""
    profiles = list(report["profiles"])
    deployment = report.get("deployment")
    t = Table(title=f"{report['network']}: {report['steps']} steps x {report['runs']} run(s)", box=box.SIMPLE)
    columns = ("index", "name", "placement", "neurons", *(("cores",) if deployment else ()), "spikes", "rate",
               "synops", "MACs", "updates")
    for col in columns:
        t.add_column(col, justify="left" if col in ("name", "placement") else "right")
    for p in profiles:
        t.add_column(f"E {p}", justify="right")
    t.add_column(f"share ({profiles[0]})", justify="right")
    cores = (lambda r: (str(r["cores"]),)) if deployment else (lambda r: ())
    for r in report["layers"]:
        t.add_row(str(r["index"]), r["name"], r["placement"], f"{r['neurons']:,}", *cores(r), f"{r['spikes_out']:,}",
                  f"{r['firing_rate']:.3f}", f"{r['synops']:,}", f"{r['macs']:,}", f"{r['neuron_updates']:,}",
                  *[_energy_cell(r, p) for p in profiles], f"{r['share'][profiles[0]]:.1%}")
    tot = report["total"]
    if deployment:
        static = tot["static_energy_pj"]
        t.add_row("", f"static: {deployment['chips']} chip(s) x {deployment['run_time_s'] * 1e3:,.3f} ms", "", "",
                  "", *[""] * 5, *[format_energy(static[p]) if p in static else "-" for p in profiles], "")
    t.add_row("", "total", "", f"{tot['neurons']:,}", *((f"{deployment['cores']:,}",) if deployment else ()),
              f"{tot['spikes_out']:,}", "", f"{tot['synops']:,}", f"{tot['macs']:,}", f"{tot['neuron_updates']:,}",
              *[_energy_cell(tot, p) for p in profiles], "100.0%")
    return t


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Energy per image for each profile, what it could not price, and the evidence behind it; for a
    profile with static power, its dynamic and static parts and the plan's chips, cores and time."""
    lines = []
    tot = report["total"]
    for name, profile in report["profiles"].items():
        terms = [*profile["terms"].values(), *profile.get("deployment", {}).values()]
        evidence = ", ".join(sorted({t["evidence"] for t in terms}))
        line = f"{name}: {format_energy(tot['energy_per_image_pj'][name])} per image ({evidence})"
        if name in tot.get("static_energy_pj", {}):
            d, images = report["deployment"], report["images"]
            line += (f" = dynamic {format_energy(tot['dynamic_energy_pj'][name] / images)} (active cores "
                     f"{format_energy(tot['active_core_pj'][name] / images)} of it) + static "
                     f"{format_energy(tot['static_energy_pj'][name] / images)}: {d['chips']} chip(s), {d['cores']:,} "
                     f"cores ({d['board']}), {d['run_time_s'] * 1e3:,.3f} ms run ({d['steps']} steps x {d['runs']} "
                     f"run(s) of {d['step_time_s'] * 1e6:,.1f} us, plan's {d['activity']} time)")
        if tot["unpriced"][name]:
            line += "; * unpriced: " + ", ".join(f"{n:,} {k}" for k, n in tot["unpriced"][name].items())
        lines.append(line)
    return lines


def to_csv(report: dict[str, Any]) -> str:
    profiles = list(report["profiles"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["index", "name", "type", "placement", "neurons", "spikes_out", "firing_rate", "synops",
                     *[f"synops_{k}" for k in KINDS], "macs", "neuron_updates", "neuron_updates_active",
                     *[f"energy_pj:{p}" for p in profiles], *[f"unpriced:{p}" for p in profiles]])
    for r in [*report["layers"], *_static_rows(report), {**report["total"], "index": "", "name": "total", "type": "",
                                                          "placement": "", "firing_rate": ""}]:
        writer.writerow([_cell(v) for v in (
            r["index"], r["name"], r["type"], r["placement"], r["neurons"], r["spikes_out"],
            r["firing_rate"], r["synops"], *[r["synops_by_kind"][k] for k in KINDS], r["macs"],
            r["neuron_updates"], r["neuron_updates_active"], *[r["energy_pj"][p] for p in profiles],
            *[";".join(f"{k}={n}" for k, n in r["unpriced"][p].items()) for p in profiles])])
    return out.getvalue()


def _static_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The chips' static energy as one CSV row (none without a profile with static power)."""
    static = report["total"].get("static_energy_pj")
    if not static:
        return []
    empty = {"neurons": "", "spikes_out": "", "synops": "", "synops_by_kind": {k: "" for k in KINDS}, "macs": "",
             "neuron_updates": "", "neuron_updates_active": ""}
    return [{**empty, "index": "", "name": "static", "type": "", "placement": "", "firing_rate": "",
             "energy_pj": {p: static.get(p, "") for p in report["profiles"]},
             "unpriced": {p: {} for p in report["profiles"]}}]


def _cell(value: Any) -> Any:
    """A CSV cell: floats to 9 significant digits, so sums like 0.1 + 0.2 print as 0.3."""
    return f"{value:.9g}" if isinstance(value, float) else value


def write_json(data: dict[str, Any], path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def plot(report: dict[str, Any], path: str | Path) -> None:
    """One horizontal bar per layer and profile (log scale); hatched bars have unpriced parts."""
    check_plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers, profiles = report["layers"], list(report["profiles"])
    labels = [f"{r['index']} {r['name'][-40:]}" for r in layers]
    fig, axes = plt.subplots(1, len(profiles), figsize=(4 + 4 * len(profiles), 1 + 0.18 * len(layers)),
                             sharey=True, squeeze=False)
    for ax, p in zip(axes[0], profiles):
        values = [r["energy_pj"][p] for r in layers]
        bars = ax.barh(range(len(layers)), values, color="tab:blue")
        for bar, r in zip(bars, layers):
            if r["unpriced"][p]:
                bar.set(facecolor="tab:orange", edgecolor="black", hatch="//", linewidth=0)
        if any(values):
            ax.set_xscale("log")
        ax.set_title(f"{p}: {format_energy(report['total']['energy_pj'][p])}", fontsize=9)
        ax.set_xlabel("energy per layer (pJ)")
    axes[0][0].set_yticks(range(len(layers)), labels, fontsize=6)
    axes[0][0].invert_yaxis()
    fig.suptitle(f"{Path(report['network']).name}: energy per layer (hatched: partly unpriced)", fontsize=10)
    with warnings.catch_warnings():  # one layer leaves tight_layout no room; the tight bounding box below does
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lower().lstrip("."), dpi=120, bbox_inches="tight")  # long names
    plt.close(fig)
