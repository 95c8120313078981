"""Images, paired deraining datasets, synthetic rain and quality metrics."""

from neuro_deploy.data.dataset import PairedDataset
from neuro_deploy.data.images import from_tensor, image_format, read_image, to_tensor, write_image
from neuro_deploy.data.metrics import evaluate, psnr, psnr_y, rgb_to_y, ssim, ssim_y
from neuro_deploy.data.synthetic import PRESETS, RainPreset, add_rain, clean_crops, make_synthetic_rain

__all__ = [
    "PRESETS",
    "PairedDataset",
    "RainPreset",
    "add_rain",
    "clean_crops",
    "evaluate",
    "from_tensor",
    "image_format",
    "make_synthetic_rain",
    "psnr",
    "psnr_y",
    "read_image",
    "rgb_to_y",
    "ssim",
    "ssim_y",
    "to_tensor",
    "write_image",
]
