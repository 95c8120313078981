"""The package as users install it: package data, declared ranges, and a wheel that works from
another folder in a fresh virtual environment (no download: the project venv's packages are shared)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tomli
from packaging.requirements import Requirement

from neuro_deploy.common import resources
from neuro_deploy.energy.profiles import load_profile
from neuro_deploy.zoo import read_checkpoint

from conftest import REPO

BUNDLED = ["esdnet_small", "vlifnet_small", "vlifnet_small_deployable"]


def _pyproject() -> dict:
    return tomli.loads((REPO / "pyproject.toml").read_text())


def test_dependencies_are_ranges_that_hold_the_locked_versions():
    locked = dict(line.split("==") for line in (REPO / "requirements.lock").read_text().split() if "==" in line)
    locked = {name.lower(): version for name, version in locked.items()}
    project = _pyproject()["project"]
    requirements = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    for req in requirements:
        assert not any(spec.operator in ("==", "===") for spec in req.specifier), f"{req} is a pin, not a range"
        assert req.specifier, f"{req} has no range at all"
        assert req.specifier.contains(locked[req.name.lower()]), f"{req} excludes the locked {locked[req.name.lower()]}"


def test_profiles_and_models_are_package_data():
    data = _pyproject()["tool"]["setuptools"]["package-data"]["neuro_deploy"]
    assert {"hw_profiles/*.toml", "models/*.pt", "models/*.md"} <= set(data)
    assert not (REPO / "hw_profiles").exists() and not (REPO / "models").exists()
    assert "loihi" in resources.profile_names() and "cmos45_fp32" in resources.profile_names()
    assert resources.model_names() == BUNDLED
    for name in BUNDLED:
        assert resources.bundled_model(name) == REPO / "neuro_deploy" / "models" / f"{name}.pt"
        assert resources.bundled_model(f"{name}.pt") == resources.bundled_model(name)
        assert (resources.models_folder() / f"{name}.md").is_file()  # every model has its card
    assert resources.bundled_model("no_such_model") is None
    assert resources.bundled_model("../pyproject") is None


def test_bundled_names_resolve_from_any_folder_and_a_local_file_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = read_checkpoint("vlifnet_small_deployable")
    assert ckpt.path == str(REPO / "neuro_deploy" / "models" / "vlifnet_small_deployable.pt")
    assert load_profile("loihi").name == "loihi"
    shutil.copy(REPO / "neuro_deploy" / "models" / "esdnet_small.pt", tmp_path / "vlifnet_small_deployable")
    assert read_checkpoint("vlifnet_small_deployable").arch == "esdnet"  # the user's own file, not ours


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))}\n{result.stdout}\n{result.stderr}"
    return result


def test_wheel_installs_and_runs_bundled_models_and_profiles_from_another_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    src = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info in the repository
    shutil.copytree(REPO / "neuro_deploy", src / "neuro_deploy", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(tmp_path / "dist"), str(src)], tmp_path, env)
    (wheel,) = (tmp_path / "dist").glob("neuro_deploy-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "neuro_deploy/hw_profiles/loihi.toml" in names
    assert "neuro_deploy/models/vlifnet_small_deployable.pt" in names
    assert "neuro_deploy/firing_rates/esdnet_release_cpu.json" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path, env).stdout.strip())
    # the project venv's packages as a plain path: its own .pth files (the editable install) stay unread
    (site / "project_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], tmp_path, env)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = _run([str(python), "-c", "import neuro_deploy; print(neuro_deploy.__file__)"], elsewhere, env).stdout
    assert found.strip().startswith(str(site)), found  # the wheel, not the repository
    cli = str(venv / "bin" / "neuro-deploy")
    assert "Usage: neuro-deploy" in _run([cli], elsewhere, env).stdout
    converted = _run([cli, "convert", "vlifnet_small_deployable", "-o", "m.net", "--size", "16"], elsewhere, env)
    assert (elsewhere / "m.net").is_file() and "wrote m.net" in converted.stdout
    np.save(elsewhere / "x.npy", np.random.default_rng(0).random((3, 16, 16)).astype(np.float32))
    report = json.loads(_run([cli, "energy", "m.net", "--input", "x.npy", "--profile", "loihi", "--format", "json"],
                             elsewhere, env).stdout)
    assert report["total"]["energy_pj"]["loihi"] > 0
    assert report["profiles"]["loihi"]["path"].startswith(str(site))
    rainy = REPO / "neuro_deploy" / "assets" / "demo" / "input" / "rain_demo.png"
    _run([str(python), "-m", "neuro_deploy", "derain", "--model", "vlifnet_small_deployable", "--input", str(rainy),
          "-o", "clean.png"], elsewhere, env)
    assert (elsewhere / "clean.png").is_file()
    analysis = json.loads(_run([cli, "compare", "--preset", "release-cpu", "--format", "json"], elsewhere, env).stdout)
    assert analysis["networks"]["esdnet"]["rates_from"]["file"].startswith(str(site))  # the bundled rate profile


@pytest.mark.parametrize("args", [[], ["--help"]])
def test_bare_command_and_python_m_print_help(args):
    result = subprocess.run([sys.executable, "-m", "neuro_deploy", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: neuro-deploy") and "convert" in result.stdout
    assert result.stderr == ""
