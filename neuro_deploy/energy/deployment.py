"""What a run costs beyond its operations: the static power of the chips it occupies over its time,
and each active core's per-step overhead (a profile's `[deployment.*]` terms).

The chips, cores and time come from a deployment plan (`neuro_deploy.deploy`), which builds a
`Deployment`; this module only prices one, so energy reports need no planner of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from neuro_deploy.energy.profiles import Profile

PJ_PER_J = 1e12


@dataclass(frozen=True)
class Deployment:
    """Where and how long a counted run executes: the plan's chips and cores, and its run time."""

    board: str
    chips: int
    cores: int
    step_time_s: float
    steps: int  # steps per run (tile or sample)
    runs: int
    activity: str  # the plan's time: "input" (this run's counts) or "worst case"
    cores_by_layer: dict[str, int] = field(default_factory=dict)

    @property
    def run_time_s(self) -> float:
        return self.step_time_s * self.steps * self.runs

    @property
    def core_steps(self) -> int:
        return self.cores * self.steps * self.runs

    def to_json(self) -> dict[str, Any]:
        return {"board": self.board, "chips": self.chips, "cores": self.cores, "step_time_s": self.step_time_s,
                "steps": self.steps, "runs": self.runs, "run_time_s": self.run_time_s, "activity": self.activity}


def static_pj(profile: Profile, deployment: Deployment) -> float:
    """Static power per chip x chips x run time, in pJ (0 for a profile without static power)."""
    term = profile.deployment.get("static_power")
    return term.value * deployment.chips * deployment.run_time_s * PJ_PER_J if term else 0.0


def active_core_pj(profile: Profile, deployment: Deployment, layer: str) -> float:
    """A layer's cores' per-step overhead over the run, in pJ (0 without an `active_core_step` term)."""
    term = profile.deployment.get("active_core_step")
    if term is None:
        return 0.0
    return term.value * deployment.cores_by_layer.get(layer, 0) * deployment.steps * deployment.runs
