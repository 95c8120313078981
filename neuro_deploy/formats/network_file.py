"""What every network file reader returns, and the one way files are opened: ours and plain netx alike."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neuro_deploy.common.atomic import refuse_special_file
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
    refuse_special_file(path)
    if not path.is_file():
        raise NeuroDeployError(f"network file not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise NeuroDeployError(f"{path} is not a readable HDF5 file ({str(exc).splitlines()[0]})") from None


def is_plain_netx(path: str | Path) -> bool:
    """True for a netx file without neuro-deploy's extension."""
    with open_hdf5(path) as f:
        link = f.get("neuro_deploy", getlink=True)  # the link itself: following a looping one fails
        if link is not None and not isinstance(link, h5py.HardLink):
            raise NeuroDeployError(f"{path}: /neuro_deploy is a link; network files hold only datasets and groups")
        return link is None


# ---- reading datasets safely ------------------------------------------------------------------

#: the most bytes one stored byte can expand to: deflate, the strongest filter h5py writes, packs at
#: most 1,032 bytes into one (zlib's technical notes); uncompressed data does not expand at all.
MAX_EXPANSION = 1032
#: what a dataset may declare without storing it (unwritten data reads as its fill value): small
#: enough that no hostile declaration below it costs memory that matters.
UNSTORED_BYTES = 1 << 20


def refuse_links(group: h5py.Group, path: str) -> list[bytes]:
    """The names of every object under `group`, refusing soft and external links: neither format has
    any, a soft link can name itself (HDF5 then fails with "Special link traversal failed") and an
    external one opens another file."""
    names: list[bytes] = []
    bad: list[str] = []

    def visit(name: bytes, info) -> int | None:
        if info.type != h5py.h5l.TYPE_HARD:
            bad.append(name.decode(errors="replace"))
            return 1  # stops the walk
        names.append(name)
        return None

    group.id.links.visit(visit, info=True)
    if bad:
        kind = "an external" if isinstance(group.get(bad[0], getlink=True), h5py.ExternalLink) else "a soft"
        raise NeuroDeployError(f"{path}: {group.name.rstrip('/')}/{bad[0]} is {kind} link; network files hold "
                               "only datasets and groups")
    return names


def check_size(dataset: h5py.h5d.DatasetID, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """A dataset's shape and type, refused before it is read when it declares more data than the file
    holds for it (a shape of 10^9 elements costs no disk space, but reading it allocates them all)."""
    shape, dtype = dataset.shape, dataset.dtype
    declared = math.prod(shape) * dtype.itemsize
    if declared > UNSTORED_BYTES:
        stored = dataset.get_storage_size()
        expansion = MAX_EXPANSION if dataset.get_create_plist().get_nfilters() else 1
        if declared > stored * expansion:
            raise NeuroDeployError(f"{where} declares {math.prod(shape):,} values ({list(shape)}) but the file holds "
                                   f"{stored:,} bytes of them")
    return shape, dtype


def read_dataset(dataset: h5py.h5d.DatasetID, where: str) -> Any:
    """A dataset's value, after `check_size`: a scalar as a Python value (bytes decoded), else an
    array; NaN or infinite numbers are refused (no network file holds any)."""
    shape, dtype = check_size(dataset, where)
    if dtype.kind == "O" or dtype.fields is not None:  # variable-length strings, compounds: h5py's own path
        value = np.asarray(h5py.Dataset(dataset)[()])
    else:
        value = np.empty(shape, dtype)
        if value.size:
            dataset.read(h5py.h5s.ALL, h5py.h5s.ALL, value)
    if value.dtype.kind in "fc" and not np.isfinite(value).all():
        raise NeuroDeployError(f"{where} holds non-finite values (NaN or infinite)")
    if value.ndim:
        return value
    value = value[()]
    return value.decode(errors="replace") if isinstance(value, bytes) else value.item() if hasattr(value, "item") \
        else value


def read_tree(group: h5py.Group, path: str) -> dict[str, Any]:
    """Every dataset under `group` by its path below it, read in one walk of HDF5's own link index
    rather than key by key through h5py's objects, each checked by `read_dataset`; links are refused
    (`refuse_links`)."""
    where = f"{path}: {group.name.rstrip('/')}/"
    values = {}
    for name in refuse_links(group, path):
        obj = h5py.h5o.open(group.id, name)
        if isinstance(obj, h5py.h5d.DatasetID):
            key = name.decode()
            values[key] = read_dataset(obj, where + key)
    return values
