"""Package data (hardware profiles, bundled models) read through `importlib.resources`.

Paths relative to the repository break once the package is installed from a wheel; resources
are found wherever the package itself is.
"""

from __future__ import annotations

import atexit
import contextlib
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

MODEL_SUFFIXES = (".pt", ".pth")
_kept = contextlib.ExitStack()  # real files for resources that need one live as long as the process
atexit.register(_kept.close)


def _folder(name: str) -> Traversable:
    return resources.files("neuro_deploy") / name


def _as_path(entry: Traversable) -> Path:
    """A filesystem path for `entry` (torch, h5py and hashing need one; a zipped install gets a copy)."""
    return _kept.enter_context(resources.as_file(entry))


def profile_names() -> list[str]:
    return sorted(e.name[:-len(".toml")] for e in _folder("hw_profiles").iterdir() if e.name.endswith(".toml"))


def profile(name: str) -> Traversable | None:
    """The bundled profile `name` (without `.toml`), or None."""
    entry = _folder("hw_profiles") / f"{name}.toml"
    return entry if "/" not in name and entry.is_file() else None


def model_names() -> list[str]:
    return sorted(e.name.rsplit(".", 1)[0] for e in _folder("models").iterdir() if e.name.endswith(MODEL_SUFFIXES))


def bundled_model(name: str | Path) -> Path | None:
    """Path of a bundled checkpoint named `name` (`vlifnet_small_deployable`, with or without `.pt`), or None."""
    name = str(name)
    stem = name[:-len(Path(name).suffix)] if name.endswith(MODEL_SUFFIXES) else name
    if stem not in model_names():
        return None
    entry = next(e for e in _folder("models").iterdir() if e.name in (stem + s for s in MODEL_SUFFIXES))
    return _as_path(entry)


def rates_names() -> list[str]:
    return sorted(e.name[:-len(".json")] for e in _folder("firing_rates").iterdir() if e.name.endswith(".json"))


def bundled_rates(name: str) -> Path | None:
    """Path of a bundled per-layer firing-rate profile named `name` (without `.json`), or None."""
    entry = _folder("firing_rates") / f"{name}.json"
    return _as_path(entry) if "/" not in name and entry.is_file() else None


def models_folder() -> Path:
    """The folder of the bundled checkpoints and their model cards."""
    return _as_path(_folder("models"))


def demo_folder(kind: str) -> Path:
    """The bundled demo images: `input` (rainy) or `target` (clean), the default calibration set."""
    return _as_path(_folder("assets") / "demo" / kind)
