"""Deraining quality metrics: RGB PSNR/SSIM plus the MATLAB-style Y-channel ones papers report."""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

from neuro_deploy.errors import NeuroDeployError


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise NeuroDeployError(f"shape mismatch: prediction {pred.shape} vs target {target.shape}")
    if pred.ndim != 3 or pred.shape[2] != 3:
        raise NeuroDeployError(f"expected HxWx3 RGB images, got shape {pred.shape}")
    return pred, target


def _check_window(img: np.ndarray, window: int) -> None:
    """SSIM needs at least one full window; say so instead of skimage's ValueError."""
    if min(img.shape[:2]) < window:
        raise NeuroDeployError(f"image of shape {img.shape} is smaller than the {window}x{window} SSIM window")


def _psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """skimage's PSNR formula, but returning inf for identical images instead of warning."""
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB over all RGB values, data range 1."""
    pred, target = _pair(pred, target)
    return _psnr(pred, target, 1.0)


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """skimage SSIM on RGB (7x7 uniform window, per channel, averaged), data range 1."""
    pred, target = _pair(pred, target)
    _check_window(pred, 7)
    return float(structural_similarity(pred, target, channel_axis=-1, data_range=1.0))


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Y of MATLAB's rgb2ycbcr for [0,1] RGB, on the [16,235] part of the [0,255] scale."""
    img = np.asarray(img, dtype=np.float64)
    return 16.0 + img @ np.array([65.481, 128.553, 24.966])


def _y_cropped(pred: np.ndarray, target: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    pred, target = _pair(pred, target)
    h, w = pred.shape[:2]
    if border < 0 or 2 * border >= min(h, w):
        raise NeuroDeployError(f"border {border} leaves nothing of a {w}x{h} image")
    crop = (slice(border, h - border), slice(border, w - border))
    return rgb_to_y(pred)[crop], rgb_to_y(target)[crop]


def psnr_y(pred: np.ndarray, target: np.ndarray, border: int = 4) -> float:
    """PSNR in dB of the Y channel (range 255) after cropping `border` pixels per side."""
    y_pred, y_target = _y_cropped(pred, target, border)
    return _psnr(y_pred, y_target, 255.0)


def ssim_y(pred: np.ndarray, target: np.ndarray, border: int = 4) -> float:
    """SSIM of the cropped Y channel as in Wang et al. 2004 / MATLAB: Gaussian window sigma 1.5."""
    y_pred, y_target = _y_cropped(pred, target, border)
    _check_window(y_pred, 11)  # sigma 1.5 truncated at 3.5 sigma
    return float(
        structural_similarity(
            y_pred,
            y_target,
            data_range=255.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def evaluate(pred: np.ndarray, target: np.ndarray, border: int = 4) -> dict[str, float]:
    """All four metrics for one prediction/target pair; NaN where the image is too small for one."""
    pred, target = _pair(pred, target)
    side = min(pred.shape[:2])
    return {
        "psnr": psnr(pred, target),
        "ssim": ssim(pred, target) if side >= 7 else math.nan,
        "psnr_y": psnr_y(pred, target, border) if side > 2 * border else math.nan,
        "ssim_y": ssim_y(pred, target, border) if side - 2 * border >= 11 else math.nan,
    }
