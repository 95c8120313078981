"""Labels say what a figure is: the paper's 13% stands only beside a ratio of the paper's own
formula and call; measured rates of a network worse than its input are flagged."""

from __future__ import annotations

import json
import re

import pytest

from neuro_deploy.energy import analytic
from neuro_deploy.energy.profiles import load_profile

from conftest import REPO
from test_cli import run_cli

FORMULA = dict(counting="textbook", exclude=("gates",))  # the paper's formula on top of `--preset paper`


@pytest.fixture(scope="module")
def fp32():
    return load_profile("cmos45_fp32")


def _ratio_line(a: analytic.Analysis) -> str:
    return next(line for line in analytic.analysis_lines(a) if line.startswith("VLIFNet/ESDNet ="))


def test_only_the_papers_formula_and_call_stand_beside_its_13_percent(fp32):
    a = analytic.configure(fp32, "paper", **FORMULA)
    assert analytic.differences_from_paper(a) == []
    assert "(paper: 13%; its formula and call" in _ratio_line(a) and "assumed" in _ratio_line(a)


@pytest.mark.parametrize("change,named", [
    (dict(), "gate MACs charged"),  # the preset alone: gates charged, exact counting (18.8%)
    (dict(FORMULA, size=64), "64x64"),
    (dict(FORMULA, T=2), "T=2"),
    (dict(FORMULA, firing_rate="0.2"), "rate 0.2"),
    (dict(FORMULA, vlifnet="dim=48,en=4,4,8,8,de=2,2,2,2"), "vlifnet dim 48"),
    (dict(FORMULA, esdnet="dim=24,en=4,4,6,6,de=4,4,6,6"), "esdnet dim 24"),
    (dict(FORMULA, first_layer="once"), "first layer once"),
    (dict(FORMULA, real_inputs="mac"), "real-valued inputs as MAC"),
    (dict(counting="textbook", exclude=("gates", "refinement")), "refinement excluded"),
], ids=["preset-alone", "size", "timesteps", "rate", "vlifnet", "esdnet", "first-layer", "real-inputs", "exclude"])
def test_every_other_ratio_says_what_differs(fp32, change, named):
    line = _ratio_line(analytic.configure(fp32, "paper", **change))
    assert "(paper:" not in line and "not comparable with the paper's 13%" in line and named in line


def test_release_cpu_says_its_esdnet_scores_below_its_input(capsys):
    code, out, _ = run_cli(capsys, "compare", "--preset", "release-cpu")
    warnings = [line for line in out.splitlines() if "scores below its own input" in line]
    assert code == 0 and len(warnings) == 1 and warnings[0].startswith("warning: esdnet's rates")
    assert "(paper:" not in out
    code, out, _ = run_cli(capsys, "compare", "--preset", "release-cpu", "--format", "json")
    networks = json.loads(out)["networks"]
    assert {arch: n["below_input"] for arch, n in networks.items()} == {"vlifnet": False, "esdnet": True}


def test_docs_section_5_quotes_the_figures_the_code_computes(fp32):
    """docs/energy.md section 5: the formula's 17.4%, the gates-charged 18.8%, and both at dim 24."""
    text = (REPO / "docs" / "energy.md").read_text()
    section = text[text.index("## 5."):text.index("## 6.")]
    formula = analytic.configure(fp32, "paper", **FORMULA).ratio
    charged = analytic.configure(fp32, "paper").ratio
    both24 = analytic.configure(fp32, "paper", esdnet="dim=24,en=4,4,6,6,de=4,4,6,6", **FORMULA).ratio
    for ratio in (formula, charged, both24):
        assert f"{ratio:.1%}" in section
    assert not re.search(r"paper's own method and settings, with its rate", section)
