"""Hardware energy profiles: per-operation energies read from TOML files, each with its evidence.

A profile is `neuro_deploy/hw_profiles/<name>.toml`, package data (or any TOML file given by path):

    name = "loihi"
    title = "..."
    [terms.synop]
    pj = 23.6                     # energy per operation, > 0
    source = "Davies et al. ..."  # where the number comes from
    evidence = "pre-silicon"      # measured | pre-silicon | derived | vendor | assumed
    scope = "per-term"            # per-term | all-in
    covers = [...]                # all-in only: the terms its figure already includes
    note = "..."                  # optional
    [deployment.static_power]     # optional: costs of the deployment, priced from `neuro-deploy plan`
    w = 0.232                     # static power per chip the plan needs, over the run's time
    source = "..."
    evidence = "measured"
    [deployment.active_core_step]
    pj = 38.4                     # per core holding part of the network, per step run
    source = "..."
    evidence = "assumed"

A profile prices only the terms it has; every other count is reported as unpriced (or, for an
all-in figure, as included), never as zero energy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib.abc import Traversable
from pathlib import Path

import tomli

from neuro_deploy.common import resources
from neuro_deploy.errors import NeuroDeployError

#: the chip deployed to (static power included), its per-op figures alone, and the paper's 45 nm reference
DEFAULT_PROFILES = ("loihi2", "loihi", "cmos45_fp32")
#: how good a figure is: `assumed` is a figure carried over from another chip or spike type
EVIDENCE = ("measured", "pre-silicon", "derived", "vendor", "assumed")
SCOPES = ("per-term", "all-in")
#: what each term prices (see docs/energy.md)
TERMS = {
    "ac": "synaptic op on a binary spike, as an accumulate",
    "mac": "multiply-accumulate: synaptic op on a graded or real value, and host MACs",
    "synop": "synaptic op on a binary spike (one event reaching one synapse)",
    "synop_graded": "synaptic op on a graded or real-valued event",
    "neuron_update": "one neuron updated in one step (active or not)",
    "neuron_update_active": "a neuron update that emits an event",
    "neuron_update_inactive": "a neuron update that emits nothing",
    "spike": "one output event sent",
}
#: deployment terms (priced from a plan's chips, cores and time): name -> (unit key, what it prices)
DEPLOYMENT_TERMS = {
    "static_power": ("w", "static power of each chip the plan needs, over the run's time (W)"),
    "active_core_step": ("pj", "one core holding part of the network, in each step run (pJ)"),
}


@dataclass
class Term:
    pj: float
    source: str
    evidence: str
    scope: str
    covers: tuple[str, ...] = ()
    note: str = ""


@dataclass
class DeploymentTerm:
    """A cost of the deployment rather than of an operation: watts per chip or pJ per core-step."""

    value: float
    source: str
    evidence: str
    note: str = ""


@dataclass
class Profile:
    name: str
    title: str
    terms: dict[str, Term]
    path: str
    covered: dict[str, str] = field(default_factory=dict)  # term -> the all-in term whose figure includes it
    deployment: dict[str, DeploymentTerm] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"title": self.title, "path": self.path,
                "terms": {k: {"pj": t.pj, "source": t.source, "evidence": t.evidence, "scope": t.scope,
                              **({"covers": list(t.covers)} if t.covers else {}), **({"note": t.note} if t.note else {})}
                          for k, t in self.terms.items()},
                **({"deployment": {k: {DEPLOYMENT_TERMS[k][0]: t.value, "source": t.source, "evidence": t.evidence,
                                       **({"note": t.note} if t.note else {})} for k, t in self.deployment.items()}}
                   if self.deployment else {})}


def available() -> list[str]:
    return resources.profile_names()


def load_profile(spec: str | Path) -> Profile:
    """A bundled profile by name, or a TOML file by path."""
    spec = str(spec)
    path: Path | Traversable | None = Path(spec)
    if path.suffix != ".toml" and not path.is_file():
        path = resources.profile(spec)
        if path is None:
            raise NeuroDeployError(f"unknown profile {spec!r} (bundled: {', '.join(available())}; "
                                   "or give a .toml file path)")
    if not path.is_file():
        raise NeuroDeployError(f"profile file not found: {path}")
    try:
        data = tomli.loads(path.read_text())
    except (tomli.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NeuroDeployError(f"profile {path} is not valid TOML ({exc})") from None
    return parse_profile(data, str(path))


def parse_profile(data: dict, where: str) -> Profile:
    name = data.get("name", Path(where).stem)
    terms_data = data.get("terms")
    if not isinstance(name, str) or not name:
        raise NeuroDeployError(f"profile {where}: 'name' must be a non-empty string")
    if not isinstance(terms_data, dict) or not terms_data:
        raise NeuroDeployError(f"profile {where}: no [terms.<term>] tables")
    terms = {key: _term(key, value, f"profile {where}: term {key!r}") for key, value in terms_data.items()}
    covered = {}
    for key, term in terms.items():
        for c in term.covers:
            if c in terms:
                raise NeuroDeployError(f"profile {where}: term {key!r} covers {c!r}, which has its own figure")
            covered[c] = key
    deployment_data = data.get("deployment", {})
    if not isinstance(deployment_data, dict):
        raise NeuroDeployError(f"profile {where}: 'deployment' must be a table of [deployment.<term>] tables")
    deployment = {key: _deployment_term(key, value, f"profile {where}: deployment term {key!r}")
                  for key, value in deployment_data.items()}
    return Profile(name, str(data.get("title", name)), terms, where, covered, deployment)


def _positive(value: object, unit: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise NeuroDeployError(f"{where}: {unit} must be a positive number, got {value!r}")
    return float(value)


def _deployment_term(key: str, value: object, where: str) -> DeploymentTerm:
    if key not in DEPLOYMENT_TERMS:
        raise NeuroDeployError(f"{where} is not a known deployment term (known: {', '.join(DEPLOYMENT_TERMS)})")
    if not isinstance(value, dict):
        raise NeuroDeployError(f"{where} must be a table")
    unit = DEPLOYMENT_TERMS[key][0]
    for required in (unit, "source", "evidence"):
        if required not in value:
            raise NeuroDeployError(f"{where} has no {required!r}")
    if not isinstance(value["source"], str) or not value["source"].strip():
        raise NeuroDeployError(f"{where}: source must say where the number comes from")
    if value["evidence"] not in EVIDENCE:
        raise NeuroDeployError(f"{where}: evidence {value['evidence']!r} is not one of {', '.join(EVIDENCE)}")
    unknown = set(value) - {unit, "source", "evidence", "note"}
    if unknown:
        raise NeuroDeployError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    return DeploymentTerm(_positive(value[unit], unit, where), value["source"], value["evidence"],
                          str(value.get("note", "")))


def _term(key: str, value: object, where: str) -> Term:
    if key not in TERMS:
        raise NeuroDeployError(f"{where} is not a known term (known: {', '.join(TERMS)})")
    if not isinstance(value, dict):
        raise NeuroDeployError(f"{where} must be a table")
    for required in ("pj", "source", "evidence", "scope"):
        if required not in value:
            raise NeuroDeployError(f"{where} has no {required!r}")
    pj = value["pj"]
    if isinstance(pj, bool) or not isinstance(pj, (int, float)) or not math.isfinite(pj) or pj <= 0:
        raise NeuroDeployError(f"{where}: pj must be a positive number of picojoules, got {pj!r}")
    if not isinstance(value["source"], str) or not value["source"].strip():
        raise NeuroDeployError(f"{where}: source must say where the number comes from")
    if value["evidence"] not in EVIDENCE:
        raise NeuroDeployError(f"{where}: evidence {value['evidence']!r} is not one of {', '.join(EVIDENCE)}")
    if value["scope"] not in SCOPES:
        raise NeuroDeployError(f"{where}: scope {value['scope']!r} is not one of {', '.join(SCOPES)}")
    covers = value.get("covers", [])
    if not isinstance(covers, list) or any(c not in TERMS or c == key for c in covers):
        raise NeuroDeployError(f"{where}: covers must list other known terms, got {covers!r}")
    if covers and value["scope"] != "all-in":
        raise NeuroDeployError(f"{where}: only an all-in figure can cover other terms")
    unknown = set(value) - {"pj", "source", "evidence", "scope", "covers", "note"}
    if unknown:
        raise NeuroDeployError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    return Term(float(pj), value["source"], value["evidence"], value["scope"], tuple(covers), str(value.get("note", "")))


def load_profiles(specs: tuple[str, ...] | list[str]) -> list[Profile]:
    """Several profiles; two with the same name would make the report ambiguous."""
    profiles = [load_profile(s) for s in specs]
    names = [p.name for p in profiles]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise NeuroDeployError(f"profile name {duplicates[0]!r} given twice")
    return profiles
