"""Outputs appear whole or not at all, with the permissions any other file written here would get."""

from __future__ import annotations

import os

import pytest

from neuro_deploy.common.atomic import atomic_path


def test_output_gets_the_umask_permissions_not_mkstemps(tmp_path):
    target = tmp_path / "out" / "result.json"
    with atomic_path(target) as tmp:
        tmp.write_text("{}")
    mask = os.umask(0)
    os.umask(mask)
    assert target.read_text() == "{}"
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_failure_leaves_neither_target_nor_temporary(tmp_path):
    target = tmp_path / "result.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
