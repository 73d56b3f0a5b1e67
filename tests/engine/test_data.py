import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae.data import (
    IN_BOX_MNIST,
    MNIST_FILES,
    PHASE_NAMES,
    DataError,
    in_box_arrays,
    load_dataset,
    load_digits,
    load_folder,
    load_moons,
    make_moons,
    phase_class,
    render_moons,
)

# --------------------------------------------------------------------------- moons


def test_moons_are_deterministic_from_the_seed():
    a_x, a_angle = make_moons(40, seed=3)
    b_x, b_angle = make_moons(40, seed=3)
    c_x, c_angle = make_moons(40, seed=4)
    assert torch.equal(a_x, b_x) and torch.equal(a_angle, b_angle)
    assert not torch.equal(a_x, c_x) and not torch.equal(a_angle, c_angle)


def test_built_data_sets_are_kept_on_disk(tmp_path, monkeypatch):
    """The app's first page with data reads the moons back instead of drawing them (~2 s) again."""
    from vae.datasets import moons as data

    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(data, "MOONS_CACHE_MIN", 10)
    made = []
    real = data.make_moons
    monkeypatch.setattr(data, "make_moons", lambda *a, **k: made.append(1) or real(*a, **k))
    first, again = data.load_moons(n_train=20, n_test=5, seed=2), data.load_moons(n_train=20, n_test=5, seed=2)
    assert len(made) == 1 and [p.name[:6] for p in tmp_path.iterdir()] == ["moons-"]
    x, angle = real(25, seed=2)
    assert torch.equal(again.train_x, x[:20]) and torch.equal(again.test_x, first.test_x)
    assert torch.equal(again.extra["test_phase"], angle[20:])
    data.load_moons(n_train=20, n_test=5, seed=3)  # other arguments, another file
    assert len(made) == 2 and len(list(tmp_path.iterdir())) == 2
    for f in tmp_path.iterdir():
        f.write_bytes(b"cut short")
    assert torch.equal(data.load_moons(n_train=20, n_test=5, seed=2).train_x, x[:20]) and len(made) == 3
    assert data.disk_cached("t", "k", lambda: {"a": np.arange(3)})["a"].tolist() == [0, 1, 2]
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "file" / "under-a-file"))
    (tmp_path / "file").write_text("not a folder")  # cannot be written: made, not kept
    assert data.disk_cached("t", "k", lambda: {"a": np.arange(2)})["a"].tolist() == [0, 1]


@pytest.mark.parametrize(
    "angle,name",
    [
        (0.0, "new moon"),
        (math.pi / 4, "waxing crescent"),
        (math.pi / 2, "first quarter"),
        (3 * math.pi / 4, "waxing gibbous"),
        (math.pi, "full moon"),
        (5 * math.pi / 4, "waning gibbous"),
        (3 * math.pi / 2, "last quarter"),
        (7 * math.pi / 4, "waning crescent"),
        (2 * math.pi - 1e-6, "new moon"),
        (2 * math.pi, "new moon"),
        (-math.pi / 2, "last quarter"),
        (math.pi / 2 + 0.3, "first quarter"),  # within +-22.5 degrees of the named phase
    ],
)
def test_phase_class(angle, name):
    assert PHASE_NAMES[int(phase_class(angle))] == name


def test_phase_class_vectorised():
    out = phase_class(np.array([0.0, math.pi / 2, math.pi, 3 * math.pi / 2]))
    assert out.tolist() == [0, 2, 4, 6]


def test_rendered_brightness_orders_full_half_crescent_new():
    angles = np.array([math.pi, math.pi / 2, math.pi / 4, 0.0])
    imgs = render_moons(angles, jitter=False)
    assert imgs.shape == (4, 28, 28) and imgs.dtype == np.float32
    full, half, crescent, new = imgs.sum((1, 2))
    assert full > half > crescent > new
    assert 0.4 < half / full < 0.6  # a half moon is half lit
    assert imgs.min() >= 0 and imgs.max() <= 1


def test_quarters_are_lit_on_the_correct_side():
    first, last = render_moons(np.array([math.pi / 2, 3 * math.pi / 2]), jitter=False)
    # Northern-hemisphere convention: the first quarter is lit on the right, the last on the left.
    assert first[:, 14:].sum() > 5 * first[:, :14].sum()
    assert last[:, :14].sum() > 5 * last[:, 14:].sum()
    np.testing.assert_allclose(first, last[:, ::-1], atol=1e-5)  # mirror images


def test_waxing_and_waning_mirror_each_other():
    waxing, waning = render_moons(np.array([math.pi / 4, 7 * math.pi / 4]), jitter=False)
    np.testing.assert_allclose(waxing, waning[:, ::-1], atol=1e-5)
    assert waxing[:, 14:].sum() > waxing[:, :14].sum()


def test_moons_dataset(moons):
    assert moons.train_x.shape == (256, 1, 28, 28) and moons.test_x.shape == (64, 1, 28, 28)
    assert moons.train_x.dtype == torch.float32
    for x in (moons.train_x, moons.test_x):
        assert x.min() >= 0 and x.max() <= 1
    assert moons.image_shape == (1, 28, 28)
    assert moons.label_names == list(PHASE_NAMES)
    angle = torch.cat([moons.extra["train_phase"], moons.extra["test_phase"]])
    labels = torch.cat([moons.train_y, moons.test_y])
    assert angle.shape == labels.shape == (320,)
    assert labels.dtype == torch.int64
    assert torch.equal(labels, torch.from_numpy(phase_class(angle.numpy())))
    assert ((angle >= 0) & (angle <= 2 * math.pi + 1e-6)).all()
    assert len(set(labels.tolist())) == 8  # every phase occurs


def test_moons_contain_exact_full_and_half_moons(moons):
    angle = torch.cat([moons.extra["train_phase"], moons.extra["test_phase"]]).double()
    labels = torch.cat([moons.train_y, moons.test_y])
    exact_full = (angle - math.pi).abs() < 1e-6
    exact_first = (angle - math.pi / 2).abs() < 1e-6
    exact_last = (angle - 3 * math.pi / 2).abs() < 1e-6
    assert exact_full.sum() >= 3 and exact_first.sum() >= 3 and exact_last.sum() >= 3
    assert (labels[exact_full] == PHASE_NAMES.index("full moon")).all()
    assert (labels[exact_first] == PHASE_NAMES.index("first quarter")).all()
    # Not all images sit on the named phases: most are spread around them.
    on_phase = torch.isclose(angle / (math.pi / 4), (angle / (math.pi / 4)).round(), atol=1e-5)
    assert 0.1 < on_phase.double().mean() < 0.5


def test_moons_image_size():
    ds = load_moons(n_train=8, n_test=2, size=32, seed=1)
    assert ds.image_shape == (1, 32, 32)
    assert ds.info()["n_train"] == 8 and ds.info()["n_test"] == 2


# --------------------------------------------------------------------------- digits


def test_digits_loader():
    a = load_digits()
    assert a.train_x.shape[1:] == (1, 28, 28) and a.test_x.shape[1:] == (1, 28, 28)
    assert len(a.train_x) + len(a.test_x) == 1797
    assert abs(len(a.test_x) - 0.2 * 1797) < 1
    for x in (a.train_x, a.test_x):
        assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1
    assert a.label_names == [str(i) for i in range(10)]
    assert set(a.train_y.tolist()) == set(range(10))
    b = load_digits()  # a fixed split
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    # Digits are light strokes on a dark background with an empty border.
    assert a.train_x[:, :, :2, :].max() < 0.05
    assert a.style == "digit-8x8"


# --------------------------------------------------------------------------- folders


def _write_png(path: Path, value: int, size=(10, 12), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 0, 255 - value)).save(path)


def test_folder_loader(tmp_path):
    for i in range(3):
        _write_png(tmp_path / "cats" / f"c{i}.png", 40 + i)
        _write_png(tmp_path / "dogs" / f"d{i}.png", 200 + i)
    (tmp_path / "dogs" / "broken.png").write_bytes(b"this is not a png")
    (tmp_path / "dogs" / "notes.txt").write_text("ignored: not an image suffix")
    ds = load_folder(tmp_path, size=8, test_fraction=0.34)
    assert ds.label_names == ["cats", "dogs"]
    assert len(ds.train_x) + len(ds.test_x) == 6
    assert len(ds.test_x) == 2
    assert ds.train_x.shape[1:] == (1, 8, 8)
    assert ds.train_x.min() >= 0 and ds.train_x.max() <= 1
    assert len(ds.skipped) == 1 and "broken.png" in ds.skipped[0]
    # The labels follow the folders: cats are dark, dogs light.
    x = torch.cat([ds.train_x, ds.test_x]).mean((1, 2, 3))
    y = torch.cat([ds.train_y, ds.test_y])
    assert (x[y == 0] < 0.3).all() and (x[y == 1] > 0.7).all()
    # The same folder gives the same split.
    again = load_folder(tmp_path, size=8, test_fraction=0.34)
    assert torch.equal(again.train_x, ds.train_x) and torch.equal(again.test_y, ds.test_y)


def test_folder_loader_rgb_and_unlabelled(tmp_path):
    for i in range(3):
        _write_png(tmp_path / f"x{i}.png", 100, mode="RGB")
    ds = load_dataset(f"folder:{tmp_path}", image_size=16, channels=3)
    assert ds.image_shape == (3, 16, 16)
    assert ds.label_names == ["(unlabelled)"]
    torch.testing.assert_close(ds.train_x[0, :, 5, 5], torch.tensor([100, 0, 155]) / 255.0, atol=1 / 255, rtol=0)


def test_folder_loader_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "missing")
    (tmp_path / "bad.png").write_bytes(b"")
    _write_png(tmp_path / "ok.png", 10)
    with pytest.raises(DataError, match="1 usable"):
        load_folder(tmp_path)


# --------------------------------------------------------------------------- MNIST and names


@pytest.fixture
def no_download(monkeypatch):
    import torchvision.datasets

    def refuse(self, *args, **kwargs):
        raise RuntimeError("downloads are disabled in the tests")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", refuse)  # FashionMNIST inherits it


@pytest.mark.parametrize("name,cls", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_missing_mnist_raises_a_helpful_data_error(tmp_path, no_download, name, cls):
    with pytest.raises(DataError) as e:
        load_dataset(name, data_dir=str(tmp_path))
    msg = str(e.value)
    for f in MNIST_FILES:
        assert f in msg
    assert str(tmp_path / cls / "raw") in msg


def test_mnist_refuses_other_sizes(tmp_path):
    with pytest.raises(DataError, match="28x28"):
        load_dataset("mnist", data_dir=str(tmp_path), image_size=32)


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("imagenet")


def test_mnist_without_download_never_tries(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", lambda self, *a, **k: calls.append(1))
    with pytest.raises(DataError, match="MNIST"):
        load_dataset("mnist", data_dir=str(tmp_path), download=False)
    assert calls == []


def _write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> None:
    import gzip
    import struct

    raw = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_files_are_read_as_torchvision_reads_them(tmp_path, no_download, gz):
    """The four IDX files are read directly (no torchvision import: ~0.8 s off the app's first page)."""
    rng = np.random.default_rng(0)
    shapes = {"train-images-idx3-ubyte": (12, 28, 28), "train-labels-idx1-ubyte": (12,)}
    shapes |= {"t10k-images-idx3-ubyte": (5, 28, 28), "t10k-labels-idx1-ubyte": (5,)}
    for f, shape in shapes.items():
        _write_idx(tmp_path / "MNIST" / "raw" / f, rng.integers(0, 256 if len(shape) > 1 else 10, shape), gz)
    ds = load_dataset("mnist", data_dir=str(tmp_path), download=False)
    assert ds.train_x.shape == (12, 1, 28, 28) and ds.test_y.shape == (5,) and ds.train_y.dtype == torch.int64
    if not gz:  # torchvision reads only the unpacked files without downloading
        import torchvision.datasets

        for train, x, y in ((True, ds.train_x, ds.train_y), (False, ds.test_x, ds.test_y)):
            ref = torchvision.datasets.MNIST(str(tmp_path), train=train, download=False)
            assert torch.equal(ref.data.unsqueeze(1).float() / 255.0, x) and torch.equal(ref.targets, y)
    broken = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    (broken.with_name(broken.name + ".gz") if gz else broken).unlink()
    broken.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]))  # announces 9 labels, holds 2
    with pytest.raises(DataError, match="announces"):
        load_dataset("mnist", data_dir=str(tmp_path), download=False)


def test_folder_with_mixed_sizes_and_modes_trains_on_what_is_usable(tmp_path):
    import numpy as np
    from PIL import Image

    from vae.data import load_folder

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.new("RGBA", (50, 20), (255, 0, 0, 128)).save(tmp_path / "a" / "rgba.png")
    Image.new("P", (7, 9)).save(tmp_path / "a" / "palette.gif")
    Image.fromarray(np.full((33, 31), 40000, dtype=np.uint16)).save(tmp_path / "b" / "deep.png")
    Image.new("CMYK", (64, 64), (0, 0, 0, 255)).save(tmp_path / "b" / "cmyk.jpg")
    Image.new("L", (3, 300), 200).save(tmp_path / "b" / "thin.bmp")
    (tmp_path / "b" / "notes.png").write_text("not an image")
    (tmp_path / "b" / "empty.jpg").write_bytes(b"")
    ds = load_folder(tmp_path, size=16, channels=1, test_fraction=0.2)
    assert len(ds.train_x) + len(ds.test_x) == 5
    assert ds.train_x.shape[1:] == (1, 16, 16) and ds.train_x.min() >= 0 and ds.train_x.max() <= 1
    assert sorted(s.split(":")[0] for s in ds.skipped) == ["b/empty.jpg", "b/notes.png"]


def test_an_empty_folder_is_a_clear_data_error(tmp_path):
    from vae.data import DataError, load_folder

    with pytest.raises(DataError, match="usable image"):
        load_folder(tmp_path)


# --------------------------------------------------------------------------- MNIST in the box


def test_the_shipped_mnist_test_set_is_all_10000_digits_as_uint8():
    x, y = in_box_arrays()
    assert x.shape == (10_000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10_000,) and set(np.unique(y).tolist()) == set(range(10))
    counts = np.bincount(y, minlength=10)
    assert ((counts >= 850) & (counts <= 1150)).all(), counts
    assert 0 < x.mean() < 255 and x.max() == 255  # grey digits on black, not a placeholder
    assert IN_BOX_MNIST.stat().st_size < 3e6
    credit = (IN_BOX_MNIST.parent / "README.md").read_text()
    assert "LeCun" in credit and "Cortes" in credit and "CC BY-SA 3.0" in credit


def test_mnist_without_its_files_is_the_shipped_test_set(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", lambda self, *a, **k: calls.append(1))
    ds = load_dataset("mnist", data_dir=str(tmp_path), need_train=False)
    assert calls == []  # the test set is here: nothing to download
    assert ds.name == "mnist" and ds.info()["n_test"] == len(ds.test_x) == 10_000 and ds.n_train == 0
    assert ds.test_x.shape == (10_000, 1, 28, 28) and ds.test_x.dtype == torch.float32
    assert ds.train_x.shape == (0, 1, 28, 28) and ds.image_shape == (1, 28, 28)
    x, y = in_box_arrays()
    assert torch.equal(ds.test_x[:, 0], torch.from_numpy(x).float() / 255) and torch.equal(
        ds.test_y, torch.from_numpy(y).long()
    )
    assert ds.label_names == [str(i) for i in range(10)] and ds.style == "digit"
    assert "vae/assets/mnist" in ds.note and str(tmp_path / "MNIST" / "raw") in ds.note
    ref, split = ds.neighbours()
    assert split == "test" and ref is ds.test_x


def test_the_shipped_test_set_never_replaces_the_files_for_training(tmp_path, no_download):
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", data_dir=str(tmp_path), download=False)
    with pytest.raises(DataError, match="FashionMNIST"):  # no copy of Fashion-MNIST ships
        load_dataset("fashion-mnist", data_dir=str(tmp_path), download=False, need_train=False)


def test_mnist_files_when_present_come_before_the_shipped_test_set(tmp_path):
    rng = np.random.default_rng(0)
    shapes = {"train-images-idx3-ubyte": (6, 28, 28), "train-labels-idx1-ubyte": (6,)}
    shapes |= {"t10k-images-idx3-ubyte": (3, 28, 28), "t10k-labels-idx1-ubyte": (3,)}
    for f, shape in shapes.items():
        _write_idx(tmp_path / "MNIST" / "raw" / f, rng.integers(0, 256 if len(shape) > 1 else 10, shape))
    ds = load_dataset("mnist", data_dir=str(tmp_path), download=False, need_train=False)
    assert ds.n_train == 6 and len(ds.test_x) == 3 and ds.note == ""
    assert ds.neighbours()[1] == "train"
