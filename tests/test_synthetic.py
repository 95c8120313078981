import numpy as np
import pytest

from neuro_deploy.data import PRESETS, PairedDataset, add_rain, clean_crops, make_synthetic_rain, read_image
from neuro_deploy.errors import NeuroDeployError


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_values(tmp_path):
    names = make_synthetic_rain(tmp_path, n=3, preset="light", size=32, seed=1)
    assert names == ["syn_0000.png", "syn_0001.png", "syn_0002.png"]
    assert sorted(_files(tmp_path)) == [f"{d}/{n}" for d in ("input", "target") for n in names]
    ds = PairedDataset(tmp_path)
    assert ds.names == names
    for rainy, clean, _ in (ds[i] for i in range(len(ds))):
        assert rainy.shape == clean.shape == (32, 32, 3)
        assert rainy.min() >= 0 and rainy.max() <= 1
        assert (rainy > clean).any()


def test_same_seed_same_files_other_seed_differs(tmp_path):
    make_synthetic_rain(tmp_path / "a", n=2, preset="heavy", size=32, seed=7)
    make_synthetic_rain(tmp_path / "b", n=2, preset="heavy", size=32, seed=7)
    make_synthetic_rain(tmp_path / "c", n=2, preset="heavy", size=32, seed=8)
    a, b, c = (_files(tmp_path / d) for d in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.startswith("input/"))


def test_add_rain_is_deterministic_per_rng():
    clean = clean_crops(1, 48, np.random.default_rng(0))[0]
    first = add_rain(clean, np.random.default_rng(3), "light")
    again = add_rain(clean, np.random.default_rng(3), "light")
    other = add_rain(clean, np.random.default_rng(4), "light")
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_heavy_adds_more_rain_than_light():
    rng = np.random.default_rng(0)
    crops = clean_crops(6, 64, rng)
    diff = {
        preset: np.mean([np.abs(add_rain(c, rng, preset) - c).mean() for c in crops]) for preset in ("light", "heavy")
    }
    assert diff["light"] > 0.005
    assert diff["heavy"] > 2 * diff["light"]


def test_rain_brightens_and_stays_in_range():
    clean = np.full((40, 40, 3), 0.2, dtype=np.float32)
    for preset in PRESETS:
        rainy = add_rain(clean, np.random.default_rng(0), preset)
        assert rainy.dtype == np.float32 and rainy.shape == clean.shape
        assert rainy.min() >= clean.min() - 1e-6 and rainy.max() <= 1.0
        assert rainy.max() > 0.4


def test_clean_crops_shape_range_and_seed():
    crops = clean_crops(4, 24, np.random.default_rng(5))
    assert [c.shape for c in crops] == [(24, 24, 3)] * 4
    assert all(c.dtype == np.float32 and 0 <= c.min() and c.max() <= 1 for c in crops)
    again = clean_crops(4, 24, np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(crops, again))


def test_target_is_the_clean_crop(tmp_path):
    make_synthetic_rain(tmp_path, n=1, preset="light", size=16, seed=2)
    expected = clean_crops(1, 16, np.random.default_rng(2))[0]
    np.testing.assert_allclose(read_image(tmp_path / "target" / "syn_0000.png"), expected, atol=0.5 / 255 + 1e-6)


def test_errors(tmp_path):
    with pytest.raises(NeuroDeployError, match="drizzle.*heavy, light"):
        make_synthetic_rain(tmp_path, n=1, preset="drizzle")
    with pytest.raises(NeuroDeployError, match="drizzle"):
        add_rain(np.zeros((8, 8, 3)), np.random.default_rng(0), "drizzle")
    with pytest.raises(NeuroDeployError, match="at least 1"):
        make_synthetic_rain(tmp_path, n=0)
    with pytest.raises(NeuroDeployError, match="crop size"):
        make_synthetic_rain(tmp_path, n=1, size=5000)
    assert not any(tmp_path.iterdir())


def test_train_and_test_splits_use_disjoint_photographs(tmp_path):
    from neuro_deploy.data.synthetic import SPLITS

    assert not set(SPLITS["train"]) & set(SPLITS["test"])
    make_synthetic_rain(tmp_path / "train", 2, size=32, seed=3, split="train")
    make_synthetic_rain(tmp_path / "test", 2, size=32, seed=3, split="test")
    a = read_image(tmp_path / "train" / "target" / "syn_0000.png")
    b = read_image(tmp_path / "test" / "target" / "syn_0000.png")
    assert not np.array_equal(a, b)
    with pytest.raises(NeuroDeployError, match="unknown split 'validation'"):
        make_synthetic_rain(tmp_path / "x", 1, split="validation")
