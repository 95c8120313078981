"""Energy reports that know the deployment: a run's counts priced per operation, plus, for profiles
with deployment terms (`loihi2`), the static power of the chips the plan needs over the run's time
and each active core's per-step cost. Every command that prices a run goes through `priced_report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from neuro_deploy.common.progress import Update
from neuro_deploy.counting.counts import Counts
from neuro_deploy.counting.run import simulate_and_count, simulate_network_file
from neuro_deploy.deploy.plan import plan_network
from neuro_deploy.energy.deployment import Deployment
from neuro_deploy.energy.profiles import Profile
from neuro_deploy.energy.report import build_report
from neuro_deploy.formats.network_file import NetworkFile
from neuro_deploy.run.overflow import summarize
from neuro_deploy.run.simulate import Simulation


def deployment_of(net: NetworkFile, counts: Counts) -> Deployment:
    """The plan of `net` timed on this run's counts: its board, chips, cores (per layer) and the time
    of the run's steps and tiles."""
    plan = plan_network(net, counts=counts)
    return Deployment(plan.board, plan.chips, plan.cores, plan.step_time_s, counts.steps, counts.runs, plan.activity,
                      {lp.name: lp.cores for lp in plan.layers if lp.cores})


def priced_report(net: NetworkFile, counts: Counts, profiles: list[Profile], images: int = 1) -> dict[str, Any]:
    """`build_report`, planning the network only when a profile prices static power or active cores."""
    deployment = deployment_of(net, counts) if any(p.deployment for p in profiles) else None
    return build_report(counts, profiles, images, deployment)


def report_of_file(path: str | Path, input_path: str | Path, profiles: list[Profile], backend: str = "fast",
                   steps: int | None = None, on_tile: Update | None = None, skip: tuple[str, ...] = ()
                   ) -> dict[str, Any]:
    """The energy report of any network file run on the input at `input_path` (`energy`'s work),
    with the run's overflow (`neuro_deploy.run.overflow.summarize`) under "overflow"."""
    net, result, counts = simulate_network_file(path, input_path, backend, steps, on_tile, skip)
    return {**priced_report(net, counts, profiles), "overflow": summarize(net.quantized, result.overflow)}


def priced_runner(profiles: list[Profile]) -> Callable[..., tuple[Simulation, dict[str, Any]]]:
    """A run that is counted and priced on `profiles`, its overflow beside the prices as `energy` reports
    it: what `simulate --energy` hands `neuro_deploy.run.simulate_file` (which may not import the
    stages above it)."""
    def run(net: NetworkFile, x: np.ndarray, backend: str, keep_events: bool, on_tile: Update | None,
            **options: Any) -> tuple[Simulation, dict[str, Any]]:
        options.pop("device", None)  # counting runs on the CPU
        result, counts = simulate_and_count(net, x, backend, keep_events=keep_events, on_tile=on_tile, **options)
        return result, {**priced_report(net, counts, profiles), "overflow": summarize(net.quantized, result.overflow)}
    return run
