"""The integer semantics of the quantized network: primitives and whole-network fidelity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuro_deploy import zoo
from neuro_deploy.backends.fast import lif, nilif, run_fixed, shift, upsample2x_int
from neuro_deploy.compile.passes.align import align
from neuro_deploy.compile.passes.lower import lower
from neuro_deploy.compile.passes.quantize import EXP_MIN, WEIGHT_MAX, WEIGHT_MIN, quantize, quantize_weight
from neuro_deploy.frontend.capture import capture
from neuro_deploy.ir.execute import execute
from neuro_deploy.zoo.neurons import NILIF, patches_to_time, time_to_channels


def test_integer_bilinear_is_sixteen_times_torch_bilinear():
    x = torch.randint(-1000, 1000, (2, 3, 5, 7))
    ref = F.interpolate(x.double(), scale_factor=2, mode="bilinear", align_corners=False) * 16
    assert torch.equal(upsample2x_int(x), ref.round().long())


def test_shift_is_floor_like_numpy_right_shift():
    x = torch.tensor([-5, -4, -1, 0, 3, 7])
    assert shift(x, -1).tolist() == np.right_shift(x.numpy(), 1).tolist() == [-3, -2, -1, 0, 1, 3]
    assert shift(x, 2).tolist() == [-20, -16, -4, 0, 12, 28]


def test_weight_quantization_even_mantissas_and_error():
    w = np.random.default_rng(0).normal(0, 1.0, (8, 8, 3, 3))
    q = quantize_weight(w)
    assert q.mantissa.min() >= WEIGHT_MIN and q.mantissa.max() <= WEIGHT_MAX
    assert not (q.mantissa % 2).any()
    assert np.abs(q.mantissa).max() >= 128  # the finest exponent uses the top bit
    assert q.error < 0.02 and q.clipped == 0.0  # 7 significant bits
    assert np.abs(q.real_weight() - w).max() <= 2.0**q.exp  # half a mantissa step of 2


def test_weight_exponent_never_finer_than_loihi_allows():
    w = np.random.default_rng(0).normal(0, 1e-3, (8, 8, 3, 3))  # would want exponent -17
    q = quantize_weight(w)
    assert q.exp == EXP_MIN
    assert np.abs(q.mantissa).max() <= 2  # the precision this costs, visible in the report's error
    assert q.error > 0.2


def test_lif_matches_lava_formula_by_hand():
    # vth 10 -> spike when v > 640; dv 2048 halves v; du 4095 -> u = a_in << 6
    x = torch.tensor([6, 6, 0, 11]).reshape(4, 1)
    # v: 384 -> 192+384=576 (no spike) -> 288 -> 144+704=848 (spike, reset)
    assert lif(x, vth=10, du=4095, dv=2048).flatten().tolist() == [0, 0, 0, 1]


def test_nilif_integer_program_equals_float_neuron_on_exact_inputs():
    unit = 2**16
    g = torch.Generator().manual_seed(0)
    # multiples of 4^6 keep every floor division exact over the 16 sub-steps
    x = torch.randint(-3 * unit // 4**6, 6 * unit // 4**6, (4, 2, 3, 4, 4), generator=g) * 4**6
    got = nilif(x, 2, unit, 2, 4)
    ref = time_to_channels(NILIF()(patches_to_time(x.double() / unit, 2)), 2) * 4
    assert torch.equal(got, ref.round().long())


def _quantized(model, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    calibration = torch.rand(4, 3, size, size, generator=g)
    graph = lower(capture(model.eval(), size, size))
    align(graph)
    return graph, quantize(graph, calibration), torch.rand(1, 3, size, size, generator=g)


def test_quantized_reference_network_stays_close_to_float(official_small):
    arch, ref = official_small
    model = zoo.build(arch, **ref["constructor"])
    model.load_state_dict(ref["state_dict"])
    graph, q, image = _quantized(model)
    assert not [n for n, layer in q.layers.items() if layer.overflow]
    fixed = run_fixed(q, image)
    real = execute(graph, image.double())
    mse = float(((fixed - real) ** 2).mean())
    assert 10 * np.log10(1.0 / mse) > 30  # PSNR of the integer run against float, random weights


def test_payloads_are_integers_of_the_declared_width():
    model = zoo.build("vlifnet", dim=8, en_num_blocks=[1, 1, 1, 1], de_num_blocks=[1, 1, 1, 1],
                      attention=False, enhance_product=False)
    graph, q, image = _quantized(model)
    seen = {}

    def record(node, out):
        seen[node.name] = out

    run_fixed(q, image, record)
    for name, layer in q.layers.items():
        v = seen[name]
        assert torch.equal(v, v.round()), name  # integers (held in float64, exact below 2^53)
        assert v.abs().max() < 2 ** (layer.payload_bits - 1) or layer.payload_bits == 1, name
        if layer.payload_bits == 1:
            assert set(v.unique().tolist()) <= {0, 1}, name


@pytest.mark.parametrize(("top", "weight_top", "k"), [(1, 255, 3), (2047, 255, 3), (2**23 - 1, 254, 3),
                                                     (2**23 - 1, 2**15, 5), (4, 2**22, 1)])
def test_float32_convolution_is_exact_for_every_input_width(top, weight_top, k):
    """`exact_conv` splits wide inputs into slices whose float32 sums stay below 2^24 (or falls back
    to float64): it equals the exact integer convolution, here computed in int64 by hand."""
    from neuro_deploy.backends.fast import ConvWeight, SynapseInput, exact_conv
    from neuro_deploy.ir.graph import Synapse

    rng = np.random.default_rng(top % 97 + k)
    w = rng.integers(-weight_top, weight_top + 1, (5, 16, k, k))
    x = rng.integers(-top, top + 1, (2, 16, 9, 9))
    node = Synapse("s", weight=w.astype(np.float64), padding=k // 2, width=5)
    got = exact_conv(node, ConvWeight(w), SynapseInput(torch.from_numpy(x.astype(np.float64))[None], False, 1))
    padded = np.pad(x, ((0, 0), (0, 0), (k // 2,) * 2, (k // 2,) * 2))
    want = np.zeros((2, 5, 9, 9), np.int64)
    for dy in range(k):
        for dx in range(k):
            want += np.einsum("oc,bcyx->boyx", w[:, :, dy, dx], padded[:, :, dy:dy + 9, dx:dx + 9])
    assert np.abs(want).max() > (2**24 if top > 2**20 else 0)
    assert np.array_equal(got.numpy(), want.astype(np.float64))


@pytest.mark.parametrize("unit", [64, 96, 1000])
def test_nilif_float_path_equals_integer_path(unit):
    """The float64 path (what runs) rounds c / unit half to even exactly as the integer path does,
    ties included, for power-of-two and other units."""
    rng = np.random.default_rng(unit)
    x = torch.from_numpy(rng.integers(-2 * unit, 5 * unit, (4, 2, 3, 8, 8)))
    x[0, 0, 0, :2, :2] = unit // 2 + unit  # a tie on the first sub-step
    as_int = nilif(x, 2, unit, 2, 4)
    as_float = nilif(x.double(), 2, unit, 2, 4)
    assert torch.equal(as_float, as_int.double()) and as_int.any()
