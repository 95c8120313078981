"""Inputs checked before the work starts; outputs too, then written under a temporary name and renamed, so a
failure never leaves half a file and never names the hidden temporary one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from neuro_deploy.errors import NeuroDeployError

PathLike = str | os.PathLike


def check_outputs(outputs: Iterable[PathLike | None], inputs: Iterable[PathLike | None] = ()) -> None:
    """Refuse, before any computation, an output that is a folder, cannot be written, or would
    replace one of `inputs` (the run would be wasted, or the input destroyed). `None`s are skipped."""
    sources = [Path(p) for p in inputs if p is not None]
    for out in (Path(p) for p in outputs if p is not None):
        if out.is_dir():
            raise NeuroDeployError(f"cannot write {out}: it is a folder")
        same = next((s for s in sources if out.exists() and s.exists() and os.path.samefile(out, s)), None)
        if same is not None:
            raise NeuroDeployError(f"cannot write {out}: it is the input {same}, which it would replace")
        folder = out.parent
        while not folder.exists():  # atomic_path creates the missing folders; probe the first that exists
            folder = folder.parent
        if not folder.is_dir():
            raise NeuroDeployError(f"cannot write {out}: {folder} is not a folder")
        try:  # os.access says yes to root on read-only and virtual file systems: try for real
            fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=folder)
        except OSError as exc:
            raise NeuroDeployError(f"cannot write {out}: folder {folder} is not writable "
                                   f"({exc.strerror or type(exc).__name__})") from None
        os.close(fd)
        os.unlink(probe)


@contextlib.contextmanager
def atomic_path(target: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` only on success."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
    except OSError as exc:
        raise NeuroDeployError(f"cannot write {target}: {exc.strerror or type(exc).__name__}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp's 0600 would make every output private
        try:
            os.replace(tmp_path, target)
        except OSError as exc:
            raise NeuroDeployError(f"cannot write {target}: {exc.strerror or type(exc).__name__}") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_inputs(inputs: Iterable[PathLike | None]) -> None:
    """Refuse, before any work, an input file that is a folder, missing or empty, in one line naming
    it (numpy would call an empty `.npy` an end of file, which click reports as an interruption)."""
    for path in (Path(p) for p in inputs if p is not None):
        if path.is_dir():
            raise NeuroDeployError(f"cannot read {path}: it is a folder, not a file")
        if not path.is_file():
            raise NeuroDeployError(f"cannot read {path}: no such file")
        if path.stat().st_size == 0:
            raise NeuroDeployError(f"cannot read {path}: the file is empty")


PLOT_FORMATS = (".png", ".pdf", ".svg")


def check_plot_path(path: str | Path) -> None:
    """A `--plot` file matplotlib can write, checked before the run that feeds it."""
    if Path(path).suffix.lower() not in PLOT_FORMATS:
        raise NeuroDeployError(f"--plot {path}: expected one of {', '.join(PLOT_FORMATS)}")
