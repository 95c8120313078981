"""A local Ray instance for one command: private, reachable from this machine only, and gone
when the command is, however it ends.

- It starts its own instance (`address="local"`): never a cluster named by RAY_ADDRESS or by a
  stale `ray_current_cluster` file that `ray start` left in Ray's temp folder, which `ray.init()`
  would try to join (and then refuse `num_cpus`).
- It listens on 127.0.0.1 only: Ray turns a node address of 127.0.0.1 into this machine's network
  address (and its servers listen on every interface) unless its no-cluster mode, which Ray uses
  on macOS and Windows, is on; `loopback_only` turns that mode on while the instance starts.
- Its session files and the workers' copies of the network live in one folder of its own, which
  a reaper process (`ray_reaper`) removes with every process of the instance when the command
  ends, also when it was killed by SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import ray

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.run import ray_reaper

LOOPBACK = "127.0.0.1"
#: a local instance's object store: tiles and single images, not the default 30% of memory
LOCAL_OBJECT_STORE = 256 << 20
#: Ray's switch for its no-cluster mode (read when a process imports ray, so also set for the
#: instance's processes)
NO_CLUSTER = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
QUIET = {"logging_level": logging.ERROR, "log_to_driver": False}
#: Ray keeps its sockets in the instance's folder, and a Unix socket's path stops at 107 bytes
SOCKET_PATH_MAX = 107
SOCKET_TAIL = len("/neuro_deploy_ray_12345678/session_2026-12-06_08-26-00_123456_1234567/sockets/plasma_store")


@contextlib.contextmanager
def local_instance(workers: int) -> Iterator[Path]:
    """A Ray instance with `workers` CPUs on this machine, this process its driver, for the time of
    the `with` block; yields its folder (scratch space for its workers)."""
    folder = tempfile.mkdtemp(prefix="neuro_deploy_ray_", dir=scratch_parent())
    reaper = subprocess.Popen([sys.executable, "-I", ray_reaper.__file__, folder, str(os.getpid())],
                              stdin=subprocess.PIPE, start_new_session=True)
    environ = dict(os.environ)
    try:
        os.environ.update({ray_reaper.MARK: folder, NO_CLUSTER: "0"})  # inherited by the instance's processes
        os.environ.pop("RAY_ADDRESS", None)  # a cluster's, for `ray.init()` in its processes
        with loopback_only():
            ray.init(address="local", num_cpus=workers, include_dashboard=False, _node_ip_address=LOOPBACK,
                     _temp_dir=folder, object_store_memory=LOCAL_OBJECT_STORE, **QUIET)
        yield Path(folder)
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(environ)
        reaper.stdin.close()  # the reaper ends what is left and removes the folder
        reaper.wait()


def scratch_parent() -> str:
    """Where the instance's folder goes: TMPDIR, or /tmp when TMPDIR is too long for Ray's socket paths."""
    parent = tempfile.gettempdir()
    if len(parent) + SOCKET_TAIL <= SOCKET_PATH_MAX:
        return parent
    if os.access("/tmp", os.W_OK):
        return "/tmp"
    raise NeuroDeployError(f"TMPDIR {parent} is too long for Ray's socket paths (at most "
                           f"{SOCKET_PATH_MAX - SOCKET_TAIL} characters); set TMPDIR to a shorter folder")


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Ray's no-cluster mode in this process: the node's address stays 127.0.0.1."""
    from ray._private import ray_constants

    enabled = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = enabled
