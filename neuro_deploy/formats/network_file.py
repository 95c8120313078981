"""What every network file reader returns, and the one way files are opened: ours and plain netx alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.ir.quantized import Quantized


@dataclass
class NetworkFile:
    """A description read back: the quantized network and the file's metadata."""

    quantized: Quantized
    meta: dict[str, Any]
    path: str


def open_hdf5(path: str | Path) -> h5py.File:
    path = Path(path)
    if path.is_dir():
        raise NeuroDeployError(f"network file {path} is a folder, not a file")
    if not path.is_file():
        raise NeuroDeployError(f"network file not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise NeuroDeployError(f"{path} is not a readable HDF5 file ({str(exc).splitlines()[0]})") from None


def is_plain_netx(path: str | Path) -> bool:
    """True for a netx file without neuro-deploy's extension."""
    with open_hdf5(path) as f:
        return "neuro_deploy" not in f
