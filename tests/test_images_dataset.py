import numpy as np
import pytest
import torch
from PIL import Image

from neuro_deploy.data import PairedDataset, from_tensor, read_image, to_tensor, write_image
from neuro_deploy.errors import NeuroDeployError


def _random_image(h: int = 12, w: int = 17, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif"])
def test_lossless_round_trip(tmp_path, ext):
    img = _random_image()
    path = tmp_path / f"a{ext}"
    write_image(path, img)
    back = read_image(path)
    assert back.dtype == np.float32 and back.shape == img.shape
    np.testing.assert_allclose(back, np.round(img * 255) / 255, atol=1e-6)


def test_jpeg_round_trip_is_close(tmp_path):
    img = np.full((16, 16, 3), 0.5, dtype=np.float32)
    write_image(tmp_path / "a.jpg", img)
    assert np.abs(read_image(tmp_path / "a.jpg") - img).max() < 0.02


def test_write_clips_and_leaves_no_temporaries(tmp_path):
    img = np.array([[[-0.5, 0.5, 1.5]]], dtype=np.float32)
    write_image(tmp_path / "c.png", img)
    np.testing.assert_allclose(read_image(tmp_path / "c.png")[0, 0], [0.0, 128 / 255, 1.0], atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]


def test_write_unknown_extension(tmp_path):
    with pytest.raises(NeuroDeployError, match=r"a\.gifx"):
        write_image(tmp_path / "a.gifx", _random_image())


def test_rgba_and_gray_become_rgb(tmp_path):
    rgba = np.zeros((4, 5, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")

    got_rgba = read_image(tmp_path / "rgba.png")
    assert got_rgba.shape == (4, 5, 3)
    np.testing.assert_allclose(got_rgba[0, 0], [200 / 255, 0, 0], atol=1e-6)
    got_gray = read_image(tmp_path / "gray.png")
    assert got_gray.shape == (4, 5, 3)
    np.testing.assert_allclose(got_gray[..., 1], gray / 255, atol=1e-6)
    np.testing.assert_array_equal(got_gray[..., 0], got_gray[..., 2])


def test_sixteen_bit_gray_scaled(tmp_path):
    gray = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / "g16.png")
    np.testing.assert_allclose(read_image(tmp_path / "g16.png")[0, :, 0], [0, 32768 / 65535, 1], atol=1e-6)


def test_unreadable_files_name_the_file(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    write_image(tmp_path / "good.png", _random_image(32, 32))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes((tmp_path / "good.png").read_bytes()[:60])
    for path in (text, truncated, tmp_path / "missing.png", tmp_path):
        with pytest.raises(NeuroDeployError, match="cannot read image") as err:
            read_image(path)
        assert str(path) in str(err.value)


def test_tensor_helpers_round_trip():
    img = _random_image()
    t = to_tensor(img)
    assert t.shape == (1, 3, 12, 17) and t.dtype == torch.float32
    assert torch.equal(t[0, 1], torch.from_numpy(img[..., 1]))
    np.testing.assert_array_equal(from_tensor(t), img)
    np.testing.assert_array_equal(from_tensor(t[0]), img)


def _make_pairs(root, names, shape=(8, 8)):
    for i, name in enumerate(names):
        write_image(root / "input" / name, _random_image(*shape, seed=i))
        write_image(root / "target" / name, _random_image(*shape, seed=100 + i))


def test_paired_dataset_happy_path(tmp_path):
    _make_pairs(tmp_path, ["b.png", "a.png", "c.jpg"])
    (tmp_path / "input" / "readme.txt").write_text("ignored")
    (tmp_path / "input" / ".tmp.png").write_text("ignored hidden temp file")
    ds = PairedDataset(tmp_path)
    assert len(ds) == 3
    assert ds.names == ["a.png", "b.png", "c.jpg"]
    rainy, clean, name = ds[1]
    assert name == "b.png"
    np.testing.assert_array_equal(rainy, read_image(tmp_path / "input" / "b.png"))
    np.testing.assert_array_equal(clean, read_image(tmp_path / "target" / "b.png"))


def test_paired_dataset_missing_root(tmp_path):
    with pytest.raises(NeuroDeployError, match="nowhere"):
        PairedDataset(tmp_path / "nowhere")


@pytest.mark.parametrize("folder", ["input", "target"])
def test_paired_dataset_missing_subfolder(tmp_path, folder):
    _make_pairs(tmp_path, ["a.png"])
    for f in (tmp_path / folder).iterdir():
        f.unlink()
    (tmp_path / folder).rmdir()
    with pytest.raises(NeuroDeployError, match=f"{folder}/"):
        PairedDataset(tmp_path)


def test_paired_dataset_empty(tmp_path):
    (tmp_path / "input").mkdir()
    (tmp_path / "target").mkdir()
    with pytest.raises(NeuroDeployError, match="no images"):
        PairedDataset(tmp_path)


@pytest.mark.parametrize("orphan_in", ["input", "target"])
def test_paired_dataset_unpaired_file(tmp_path, orphan_in):
    _make_pairs(tmp_path, ["a.png"])
    write_image(tmp_path / orphan_in / "orphan.png", _random_image(8, 8))
    with pytest.raises(NeuroDeployError, match="orphan.png") as err:
        PairedDataset(tmp_path)
    assert str(tmp_path / orphan_in / "orphan.png") in str(err.value)


def test_paired_dataset_shape_mismatch(tmp_path):
    _make_pairs(tmp_path, ["a.png"])
    write_image(tmp_path / "target" / "a.png", _random_image(9, 8))
    ds = PairedDataset(tmp_path)
    with pytest.raises(NeuroDeployError, match="a.png"):
        ds[0]
