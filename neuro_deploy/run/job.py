"""One evaluation job, as both runners (in-process and Ray workers) receive it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from neuro_deploy.backends.overflow import Overflow
from neuro_deploy.data import PairedDataset
from neuro_deploy.formats.network_file import NetworkFile

#: (name, derained HxWx3, float model's HxWx3 or None, tiles, the run's overflow): how a runner hands
#: back one image
Finish = Callable[[str, np.ndarray, "np.ndarray | None", int, Overflow], None]


@dataclass
class Job:
    """One evaluation, checked: the network, its dataset and back end, and where it runs."""

    net_path: Path
    net: NetworkFile
    data: PairedDataset
    backend: str
    sha256: str
    address: str | None = None

    @property
    def tile(self) -> int:
        return int(self.net.meta["input_shape"][-1])

    def pair(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(rainy, clean) HxWx3 in [0, 1]."""
        rainy, clean, _ = self.data[self.data.names.index(name)]
        return rainy, clean
