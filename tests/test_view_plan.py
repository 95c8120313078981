"""`view --plan`: each netron node carries its layer's Loihi 2 cores, block and chips, as `plan` computes them."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

import neuro_deploy.deploy.onnx_view as onnx_view
import neuro_deploy.deploy.plan as plan_module
from neuro_deploy.deploy.plan import plan
from neuro_deploy.loihi.budgets import Budget
from test_cli import run_cli

PILOTNET = Path(__file__).parent / "data" / "loihi2" / "pilotnet_sdnn.net"


def _plan_attributes(path: Path) -> tuple[onnx.ModelProto, dict[str, dict]]:
    model = onnx.load(path)
    return model, {n.name: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute
                            if a.name.startswith("plan_")} for n in model.graph.node}


def test_view_plan_puts_cores_and_chips_on_each_node(capsys, tmp_path):
    out = tmp_path / "p.onnx"
    code, _, err = run_cli(capsys, "view", PILOTNET, "-o", out, "--plan", "--export-only")
    assert code == 0, err
    model, nodes = _plan_attributes(out)
    expected = plan(PILOTNET)
    assert set(nodes) == {lp.name for lp in expected.layers}
    for lp in expected.layers:
        attrs = nodes[lp.name]
        assert attrs["plan_cores"] == lp.cores and attrs["plan_block"].decode() == lp.block_label, lp.name
        if lp.cores:
            assert attrs["plan_first_core"] == lp.first_core and attrs["plan_chips"] == b"0 of 1"
    assert sum(a["plan_cores"] for a in nodes.values()) == expected.cores
    assert f"{expected.cores:,} cores on 1 chip(s)" in model.graph.doc_string
    code, _, _ = run_cli(capsys, "view", PILOTNET, "-o", tmp_path / "plain.onnx", "--export-only")
    assert code == 0 and not any(_plan_attributes(tmp_path / "plain.onnx")[1].values())


def test_view_plan_names_the_chips_a_layer_spans(monkeypatch, tmp_path):
    ten = Budget("cores_per_chip", 10, "cores", "", "", "assumed")
    monkeypatch.setattr(plan_module, "CORES_PER_CHIP", ten)
    monkeypatch.setattr(onnx_view, "CORES_PER_CHIP", ten)
    onnx_view.export(PILOTNET, tmp_path / "p.onnx", with_plan=True)
    expected = plan(PILOTNET)
    _, nodes = _plan_attributes(tmp_path / "p.onnx")
    for lp in (lp for lp in expected.layers if lp.cores):
        first, last = lp.first_core // 10, (lp.first_core + lp.cores - 1) // 10
        span = f"{first}" if first == last else f"{first}..{last}"
        assert nodes[lp.name]["plan_chips"].decode() == f"{span} of {expected.chips}", lp.name
    assert expected.chips == pytest.approx(expected.cores / 10, abs=1)
    assert any(b".." in a["plan_chips"] for a in nodes.values() if "plan_chips" in a)
