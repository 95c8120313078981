from types import SimpleNamespace

import pytest
import torch

from neuro_deploy.common.tile_grid import tile_count, tile_shape
from neuro_deploy.common.tiling import tiled_apply
from neuro_deploy.errors import NeuroDeployError


def _tile_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()


@pytest.mark.parametrize("h,w", [(64, 64), (100, 37), (200, 180), (3, 5), (81, 160)])
def test_identity_gives_back_the_input_exactly(h, w):
    img = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    out = tiled_apply(lambda x: x, img, tile=80, overlap=8)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert torch.equal(out, img)


@pytest.mark.parametrize("h,w", [(64, 64), (100, 37), (200, 181), (13, 5)])
def test_fn_only_sees_multiples(h, w):
    shapes = []

    def record(x):
        shapes.append(tuple(x.shape[-2:]))
        return x

    tiled_apply(record, torch.rand(1, 3, h, w), tile=80, overlap=8, multiple=8)
    assert shapes
    assert all(s % 8 == 0 and 0 < s <= 80 for shape in shapes for s in shape)


def test_single_tile_calls_fn_once_on_the_padded_image():
    calls = []
    img = torch.rand(1, 3, 70, 75)
    out = tiled_apply(lambda x: calls.append(x.shape) or x * 2, img, tile=80, overlap=8)
    assert calls == [torch.Size([1, 3, 72, 80])]
    assert torch.allclose(out, img * 2)


def test_tile_count_and_progress():
    seen = []
    tiled_apply(lambda x: x, torch.rand(1, 1, 200, 180), tile=80, overlap=8, on_tile=lambda d, t: seen.append((d, t)))
    # starts 0, 72, 120 on both axes (the last one clamped to the edge)
    assert seen == [(i, 9) for i in range(1, 10)]
    shapes = []
    for h, w in ((200, 180), (70, 75), (100, 37), (13, 5)):
        shapes.clear()
        tiled_apply(lambda x: shapes.append(tuple(x.shape[-2:])) or x, torch.rand(1, 1, h, w), tile=80, overlap=8)
        assert tile_count(h, w, 80, 8) == len(shapes) and set(shapes) == {tile_shape(h, w, 80)}


def test_progress_logs_measure_the_eta_from_the_first_report(monkeypatch, capsys):
    """A Lava tile reports its first step a minute after it started (compiling): the ETA of its later
    lines comes from the rate of the steps, not from the start-up."""
    from neuro_deploy.common import progress as progress_module

    clock = iter([0.0, 60.0, 61.0, 62.0])
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    assert not progress_module.console.is_terminal  # pytest captures stderr: the log lines
    with progress_module.progress("simulate (lava)") as update:
        update(0.01, 1)  # step 1 of 100, after 60 s
        update(0.11, 1)  # step 11, 1 s later: 10 steps a second
        update(0.21, 1)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["simulate (lava): 0/1 60s ETA 5940s ",  # one report: only the time since the start
                     "simulate (lava): 0/1 61s ETA 9s ", "simulate (lava): 0/1 62s ETA 8s "]


def test_constant_image_survives_tile_local_means():
    img = torch.full((1, 3, 150, 130), 0.37)
    assert torch.allclose(tiled_apply(_tile_mean, img), img)


def test_overlaps_cross_fade_without_seams():
    w = 200
    ramp = torch.linspace(0, 1, w).expand(1, 1, 64, w).contiguous()
    out = tiled_apply(_tile_mean, ramp, tile=80, overlap=8)[0, 0]
    # the three tile means are about 0.2, 0.56 and 0.8: a hard seam would jump by 0.24 or more
    assert out.max() - out.min() > 0.5
    assert (out[:, 1:] - out[:, :-1]).abs().max() < 0.24 / 4
    # cross-fading is the same on every row: no seams along the image border rows
    assert torch.equal(out, out[:1].expand_as(out))


def test_bad_arguments_and_bad_fn():
    img = torch.rand(1, 3, 100, 100)
    with pytest.raises(NeuroDeployError, match="multiple of 8"):
        tiled_apply(lambda x: x, img, tile=60)
    with pytest.raises(NeuroDeployError, match="overlap"):
        tiled_apply(lambda x: x, img, tile=80, overlap=80)
    with pytest.raises(NeuroDeployError, match="output shape"):
        tiled_apply(lambda x: x[:, :1], img)
