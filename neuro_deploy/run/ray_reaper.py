"""Ends a local Ray instance once the command that started it has ended, however it ended.

`neuro_deploy.run.ray_local` starts this script (standard library only, run by its path so that
it starts in a fraction of a second) beside the instance, with a pipe on its standard input. The
pipe reaches its end when the command closes it or dies: the kernel closes a dead process's
files whatever the signal, SIGKILL included. Then every process of the instance is killed (Ray
ends its GCS and raylet with their parent, but its agents and workers linger, the workers
holding their copies of the network) and the instance's folder is removed: Ray's session files
and the workers' copies. The instance's processes are found by the folder they carry in their
environment (`MARK`), which they inherit from the command, or by their log files in that folder;
Linux's /proc lists both.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

#: the environment variable naming an instance's folder in each of its processes
MARK = "NEURO_DEPLOY_RAY_FOLDER"
#: seconds to go on killing processes that appear after the first sweep (a worker still starting)
SETTLE = 3.0


def members(folder: str) -> list[int]:
    """The processes whose environment names `folder` as their instance's, or that hold a file in the
    folder open: every Ray process keeps its log there, and Ray's process titles (`ray::DashboardAgent`)
    overwrite part or all of the environment /proc shows (`ray._raylet.setproctitle` writes zeros)."""
    tag = f"{MARK}={folder}".encode()
    pids: list[int] = []
    if not Path("/proc").is_dir():  # not Linux: the folder is still removed
        return pids
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (tag in (entry / "environ").read_bytes().split(b"\0")
                                         or _holds_file_in(entry, folder)):
                pids.append(int(entry.name))
        except OSError:  # ended meanwhile, or another user's
            continue
    return pids


def _holds_file_in(process: Path, folder: str) -> bool:
    prefix = folder.rstrip("/") + "/"
    return any(os.readlink(fd).startswith(prefix) for fd in (process / "fd").iterdir())


def end_instance(folder: str, spare: set[int]) -> None:
    """Kill the instance's processes (but `spare`) until none is left, and remove its folder."""
    deadline = time.monotonic() + SETTLE
    while True:
        pids = [pid for pid in members(folder) if pid not in spare]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not pids or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    shutil.rmtree(folder, ignore_errors=True)


def main(folder: str, command: int) -> None:
    """Wait for the end of the command `command` (its pipe on stdin), then end its instance."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's to handle
    sys.stdin.buffer.read()
    end_instance(folder, {os.getpid(), command})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
