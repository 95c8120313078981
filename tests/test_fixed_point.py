"""The integer semantics of the quantized network: primitives and whole-network fidelity."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neuro_deploy import zoo
from neuro_deploy.frontend import capture
from neuro_deploy.ir.execute import execute
from neuro_deploy.passes.align import align
from neuro_deploy.passes.lower import lower
from neuro_deploy.passes.quantize import EXP_MIN, WEIGHT_MAX, WEIGHT_MIN, quantize, quantize_weight
from neuro_deploy.sim.fixed import lif, nilif, run_fixed, shift, upsample2x_int
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
        assert v.dtype == torch.int64, name
        assert v.abs().max() < 2 ** (layer.payload_bits - 1) or layer.payload_bits == 1, name
        if layer.payload_bits == 1:
            assert set(v.unique().tolist()) <= {0, 1}, name
