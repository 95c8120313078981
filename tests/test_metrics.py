import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from neuro_deploy.data import evaluate, psnr, psnr_y, rgb_to_y, ssim, ssim_y
from neuro_deploy.errors import NeuroDeployError


def _const(value: float, shape=(32, 32)) -> np.ndarray:
    return np.full((*shape, 3), value, dtype=np.float64)


def _random(seed: int, shape=(32, 40)) -> np.ndarray:
    return np.random.default_rng(seed).random((*shape, 3))


def test_psnr_constant_offset_is_20db():
    assert psnr(_const(0.5), _const(0.6)) == pytest.approx(20.0, abs=1e-9)


def test_psnr_matches_skimage_and_identical_is_inf():
    a, b = _random(0), _random(1)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(b, a, data_range=1))
    assert psnr(a, a) == math.inf


def test_rgb_to_y_reference_colours():
    assert rgb_to_y(np.array([1.0, 1.0, 1.0])) == pytest.approx(235.0)
    assert rgb_to_y(np.array([0.0, 0.0, 0.0])) == pytest.approx(16.0)
    assert rgb_to_y(np.array([1.0, 0.0, 0.0])) == pytest.approx(16.0 + 65.481)
    assert rgb_to_y(np.array([0.0, 1.0, 0.0])) == pytest.approx(16.0 + 128.553)
    assert rgb_to_y(_random(0)).shape == (32, 40)


def test_psnr_y_constant_offset():
    # a grey offset of 0.1 moves Y by 21.9, so PSNR = 20 log10(255 / 21.9)
    assert psnr_y(_const(0.5), _const(0.6)) == pytest.approx(20 * math.log10(255 / 21.9))


def test_y_metrics_ignore_the_border():
    target = _random(0)
    pred = target.copy()
    pred[:4] = 0.0
    pred[:, -4:] = 1.0
    assert psnr_y(pred, target, border=4) == math.inf
    assert ssim_y(pred, target, border=4) == pytest.approx(1.0)
    assert psnr_y(pred, target, border=3) < 30
    assert ssim_y(pred, target, border=3) < 1.0


def test_ssim_identity_is_one():
    img = _random(3)
    assert ssim(img, img) == pytest.approx(1.0)
    assert ssim_y(img, img) == pytest.approx(1.0)
    assert ssim(img, _random(4)) < 0.5


def test_ssim_of_constants_is_the_luminance_term():
    a, b = 0.3, 0.7
    c1 = (0.01 * 1.0) ** 2
    assert ssim(_const(a), _const(b)) == pytest.approx((2 * a * b + c1) / (a**2 + b**2 + c1))
    ya, yb = 16 + 219 * a, 16 + 219 * b
    c1_y = (0.01 * 255.0) ** 2
    assert ssim_y(_const(a), _const(b)) == pytest.approx((2 * ya * yb + c1_y) / (ya**2 + yb**2 + c1_y))


def test_ssim_y_is_the_gaussian_matlab_variant():
    pred, target = _random(5), _random(6)
    yp, yt = rgb_to_y(pred)[4:-4, 4:-4], rgb_to_y(target)[4:-4, 4:-4]
    gaussian = structural_similarity(
        yp, yt, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    uniform = structural_similarity(yp, yt, data_range=255)
    assert ssim_y(pred, target) == pytest.approx(gaussian)
    assert not math.isclose(gaussian, uniform, rel_tol=1e-3)


def test_evaluate_keys_and_values():
    pred, target = _random(7), _random(8)
    scores = evaluate(pred, target)
    assert scores == {
        "psnr": pytest.approx(psnr(pred, target)),
        "ssim": pytest.approx(ssim(pred, target)),
        "psnr_y": pytest.approx(psnr_y(pred, target)),
        "ssim_y": pytest.approx(ssim_y(pred, target)),
    }


@pytest.mark.parametrize("metric", [psnr, ssim, psnr_y, ssim_y, evaluate])
def test_shape_mismatch_names_both_shapes(metric):
    with pytest.raises(NeuroDeployError, match=r"\(32, 32, 3\).*\(32, 40, 3\)"):
        metric(_const(0.5), _random(0))


def test_too_small_for_border_or_window():
    with pytest.raises(NeuroDeployError, match="border"):
        psnr_y(_const(0.5, (8, 8)), _const(0.5, (8, 8)))
    with pytest.raises(NeuroDeployError, match="SSIM window"):
        ssim_y(_const(0.5, (16, 16)), _const(0.5, (16, 16)))
