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
        _check_length(out)
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
            fd, probe = tempfile.mkstemp(prefix=_hidden_prefix(out), suffix=".probe", dir=folder)
        except OSError as exc:
            raise NeuroDeployError(f"cannot write {out}: folder {folder} is not writable "
                                   f"({exc.strerror or type(exc).__name__})") from None
        os.close(fd)
        os.unlink(probe)


def _check_length(path: Path) -> None:
    """Refuse a name or path longer than the file system takes (255 bytes a name, 4,096 a path on
    Linux), which would otherwise surface as an OSError once the work is done."""
    absolute = os.fsencode(os.path.abspath(path))
    name_max, path_max = _limit("PC_NAME_MAX", 255), _limit("PC_PATH_MAX", 4096)
    if len(absolute) >= path_max:
        raise NeuroDeployError(f"cannot write {_shortened(str(path))}: the path is {len(absolute):,} bytes long, "
                               f"more than the file system takes ({path_max - 1:,})")
    longest = max(path.parts, key=lambda part: len(os.fsencode(part)), default="")
    if len(os.fsencode(longest)) > name_max:
        raise NeuroDeployError(f"cannot write {_shortened(longest)}: a name of {len(os.fsencode(longest))} bytes, "
                               f"more than the file system takes ({name_max})")


def _shortened(text: str) -> str:
    """A name too long to print, as its start and its end (where the suffix tells outputs apart)."""
    return text if len(text) <= 64 else f"{text[:40]}...{text[-20:]}"


def _limit(name: str, default: int) -> int:
    try:
        return os.pathconf("/", name)
    except (OSError, ValueError):
        return default


def _hidden_prefix(target: Path) -> str:
    """The hidden temporary's prefix: the target's name cut short, so that a name near the file
    system's limit still leaves room for the random part and the suffix."""
    return f".{target.name[:64]}."


@contextlib.contextmanager
def atomic_path(target: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` only on success."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_hidden_prefix(target), suffix=".tmp" + target.suffix[:16],
                                   dir=target.parent)
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
    """Refuse, before any work, an input file that is a folder, a FIFO or device, missing or empty, in
    one line naming it (numpy would call an empty `.npy` an end of file, which click reports as an interruption)."""
    for path in (Path(p) for p in inputs if p is not None):
        if path.is_dir():
            raise NeuroDeployError(f"cannot read {path}: it is a folder, not a file")
        refuse_special_file(path)
        if not path.is_file():
            raise NeuroDeployError(f"cannot read {path}: no such file")
        if path.stat().st_size == 0:
            raise NeuroDeployError(f"cannot read {path}: the file is empty")


def refuse_special_file(path: Path) -> None:
    """A FIFO, device or socket where a file is expected: reading one would block forever
    (a FIFO) or never end (/dev/zero), so it is refused by name rather than called missing."""
    if path.exists() and not path.is_file() and not path.is_dir():
        raise NeuroDeployError(f"cannot read {path}: not a regular file (a FIFO, device or socket)")


PLOT_FORMATS = (".png", ".pdf", ".svg")


def check_plot_path(path: str | Path) -> None:
    """A `--plot` file matplotlib can write, checked before the run that feeds it."""
    if Path(path).suffix.lower() not in PLOT_FORMATS:
        raise NeuroDeployError(f"--plot {path}: expected one of {', '.join(PLOT_FORMATS)}")
