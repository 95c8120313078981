"""neuro-deploy: trained spiking (VLIF) networks to Loihi fixed point, Lava simulation and energy.

The public API (`neuro_deploy.api`): `convert(checkpoint_or_bundled_name, **options) -> Network`,
`load_network(path) -> Network`, `evaluate(path, data, ...) -> dict` (a dataset's scores), `plan(path, ...) -> dict` (Loihi 2 cores, chips, time), `Network.save`, `Network.simulate`, `Network.energy`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["Network", "SimulationResult", "__version__", "convert", "evaluate", "load_network", "plan"]


def __getattr__(name: str) -> Any:
    """Load the API on first use: it imports torch, which `import neuro_deploy` (the CLI's start,
    `__version__`) should not pay for."""
    if name in ("Network", "SimulationResult", "convert", "evaluate", "load_network", "plan"):
        return getattr(importlib.import_module("neuro_deploy.api"), name)
    raise AttributeError(f"module 'neuro_deploy' has no attribute {name!r}")
