"""Paired rainy/clean folders (Rain12, Rain200L/H, Rain1200 layout), checked up front so a bad set fails early."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neuro_deploy.data.images import image_files, read_image
from neuro_deploy.errors import NeuroDeployError


def _image_names(folder: Path) -> set[str]:
    return {p.name for p in image_files(folder)}


class PairedDataset:
    """`<root>/input/NAME` (rainy) paired with `<root>/target/NAME` (clean), sorted by name."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise NeuroDeployError(f"dataset folder {self.root} does not exist")
        self.input_dir = self.root / "input"
        self.target_dir = self.root / "target"
        for folder in (self.input_dir, self.target_dir):
            if not folder.is_dir():
                raise NeuroDeployError(f"dataset {self.root} has no {folder.name}/ folder (expected input/ and target/)")
        inputs = _image_names(self.input_dir)
        targets = _image_names(self.target_dir)
        unpaired = sorted(inputs ^ targets)
        if unpaired:
            name = unpaired[0]
            have, lack = (self.input_dir, self.target_dir) if name in inputs else (self.target_dir, self.input_dir)
            more = f" (and {len(unpaired) - 1} more unpaired files)" if len(unpaired) > 1 else ""
            raise NeuroDeployError(f"{have / name} has no counterpart {lack / name}{more}")
        if not inputs:
            raise NeuroDeployError(f"dataset {self.root} has no images in input/ and target/")
        self.names: list[str] = sorted(inputs)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, str]:
        """(rainy, clean, name) as float32 HxWx3 in [0,1]."""
        name = self.names[i]
        rainy = read_image(self.input_dir / name)
        clean = read_image(self.target_dir / name)
        if rainy.shape != clean.shape:
            raise NeuroDeployError(
                f"{self.input_dir / name} is {rainy.shape[1]}x{rainy.shape[0]} "
                f"but {self.target_dir / name} is {clean.shape[1]}x{clean.shape[0]}"
            )
        return rainy, clean, name
