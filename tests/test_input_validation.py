"""Careless input answered in one line, exit 2, nothing written (issue 19, point 6)."""

from __future__ import annotations

import pytest

from test_cli import assert_one_line_error, run_cli


@pytest.mark.parametrize("seed", ["-1", str(2**63)])
def test_synth_rain_refuses_a_seed_numpy_cannot_take(capsys, tmp_path, seed):
    out = tmp_path / "rain"
    code, _, err = run_cli(capsys, "synth-rain", "-o", out, "-n", "1", "--seed", seed)
    assert_one_line_error(code, err, f"--seed {seed}", "non-negative")
    assert code == 2 and not out.exists()


@pytest.mark.parametrize("ratio", ["inf", "nan", "0", "-0.1"])
def test_compare_refuses_a_target_ratio_that_is_not_a_positive_number(capsys, ratio):
    code, out, err = run_cli(capsys, "compare", "--analytic", "--target-ratio", ratio)
    assert_one_line_error(code, err, f"target ratio {float(ratio)}", "positive and finite")
    assert code == 2 and out == ""  # nothing printed before the refusal


def test_compare_refuses_size_0(capsys):
    code, _, err = run_cli(capsys, "compare", "--analytic", "--size", "0")
    assert_one_line_error(code, err, "image size 0")
    assert code == 2
