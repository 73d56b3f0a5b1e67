"""Image folders larger than the memory budget stream their train split from disk."""

import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image

import vae.datasets.folder as data
import vae.datasets.moons as moons_module
from vae.data import DataError, FolderImages, load_dataset, load_folder
from vae.images import preprocess

TINY = 0.001  # MB: less than one 8x8 grey image per file for any folder below, so it streams
SHAPE = (1, 8, 8)


@pytest.fixture(autouse=True)
def no_budget_env(monkeypatch):
    monkeypatch.delenv("VAE_MEMORY_BUDGET_MB", raising=False)


def _folder(root: Path, n: int = 60) -> Path:
    """n 8x8 grey PNGs: cats/ dark (20..49), dogs/ light (200..229), each a distinct grey level."""
    for i in range(n):
        label, value = ("cats", 20 + i // 2) if i % 2 == 0 else ("dogs", 200 + i // 2)
        path = root / label / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 8), value).save(path)
    return root


def _decode(path: str) -> torch.Tensor:
    return preprocess(path, SHAPE, style="plain", dark_background=False).tensor


def _stacked(stream: FolderImages) -> tuple[torch.Tensor, torch.Tensor]:
    items = [stream[i] for i in range(len(stream))]
    return torch.stack([x for x, _, _ in items]), torch.tensor([ok for _, ok, _ in items])


def test_a_big_budget_loads_into_memory_exactly_as_before(tmp_path):
    root = _folder(tmp_path)
    plain = load_folder(root, size=8, seed=3)
    big = load_folder(root, size=8, seed=3, memory_budget_mb=1.0)  # 60 * 256 B fits in 1 MB
    assert not big.streamed and big.train_stream is None
    assert torch.equal(big.train_x, plain.train_x) and torch.equal(big.train_y, plain.train_y)
    assert torch.equal(big.test_x, plain.test_x) and torch.equal(big.test_y, plain.test_y)
    assert big.info() == plain.info()
    assert "streamed" not in big.info() and big.info()["n_train"] == 54 == big.n_train


def test_the_budget_boundary_is_the_decoded_size(tmp_path):
    root = _folder(tmp_path, n=16)
    exact = 16 * 1 * 8 * 8 * 4 / 2**20  # 4 KiB decoded
    assert not load_folder(root, size=8, memory_budget_mb=exact).streamed
    assert load_folder(root, size=8, memory_budget_mb=exact * 0.99).streamed
    assert load_folder(root, size=8, channels=3, memory_budget_mb=exact * 2).streamed  # 3 channels: 12 KiB


def test_a_tiny_budget_streams_the_train_split(tmp_path):
    root = _folder(tmp_path)
    ds = load_folder(root, size=8, memory_budget_mb=TINY)
    assert ds.streamed and isinstance(ds.train_stream, FolderImages)
    assert len(ds.test_x) == 6 and ds.n_train == 54 and len(ds.train_stream) == 54
    assert ds.n_train + len(ds.test_x) == 60
    info = ds.info()
    assert info["n_train"] == 54 and info["n_test"] == 6 and info["streamed"] is True
    assert info["image_shape"] == [1, 8, 8] and info["label_names"] == ["cats", "dogs"]
    assert ds.image_shape == SHAPE and ds.skipped == []
    # The preview is the whole (small) train split, in the stream's order.
    assert ds.train_x.shape == (54, 1, 8, 8) and ds.train_x.dtype == torch.float32
    x, ok = _stacked(ds.train_stream)
    assert ok.all() and torch.equal(ds.train_x, x)
    assert torch.equal(ds.train_y, ds.train_stream.labels)
    # No file is in both splits, and together they are the folder.
    test_values = set((ds.test_x[:, 0, 0, 0] * 255).round().int().tolist())
    train_values = set((x[:, 0, 0, 0] * 255).round().int().tolist())
    assert not test_values & train_values and len(test_values | train_values) == 60


def test_stream_labels_follow_the_folders(tmp_path):
    ds = load_folder(_folder(tmp_path), size=8, memory_budget_mb=TINY)
    stream = ds.train_stream
    assert stream.labels.dtype == torch.int64 and stream.labels.shape == (54,)
    for i in range(len(stream)):
        x, ok, idx = stream[i]
        folder = Path(stream.path(i)).parent.name
        assert ok and idx == i
        assert int(stream.labels[i]) == ds.label_names.index(folder)
        assert (x.mean() < 0.3) if folder == "cats" else (x.mean() > 0.7)
    assert sorted(set(stream.labels.tolist())) == [0, 1]
    assert set(ds.test_y.tolist()) <= {0, 1} and (ds.test_x.mean((1, 2, 3))[ds.test_y == 1] > 0.7).all()


def test_streamed_and_in_memory_splits_agree_on_a_clean_folder(tmp_path):
    root = _folder(tmp_path)
    mem = load_folder(root, size=8, seed=5)
    ds = load_folder(root, size=8, seed=5, memory_budget_mb=TINY)
    x, _ = _stacked(ds.train_stream)
    assert torch.equal(x, mem.train_x) and torch.equal(ds.train_stream.labels, mem.train_y)
    assert torch.equal(ds.test_x, mem.test_x) and torch.equal(ds.test_y, mem.test_y)


def test_stream_items_equal_the_in_memory_decode(tmp_path):
    ds = load_folder(_folder(tmp_path), size=8, memory_budget_mb=TINY)
    for i in (0, 7, 53):
        x, ok, idx = ds.train_stream[i]
        assert ok is True and idx == i
        assert x.shape == SHAPE and x.dtype == torch.float32
        assert torch.equal(x, _decode(ds.train_stream.path(i)))
    rgb = tmp_path / "rgb.png"
    Image.new("RGB", (20, 10), (100, 0, 155)).save(rgb)
    items = FolderImages([rgb], [0], (3, 4, 4))
    x, ok, _ = items[0]
    assert ok and torch.equal(x, preprocess(rgb, (3, 4, 4), style="plain", dark_background=False).tensor)
    assert (x[:, 2, 2] * 255).round().tolist() == [100, 0, 155]


def test_a_corrupt_train_file_gives_zeros_and_not_ok(tmp_path, monkeypatch):
    root = _folder(tmp_path, n=20)
    (root / "dogs" / "broken.png").write_bytes(b"not a png")
    monkeypatch.setattr(data, "STREAM_PREVIEW", 0)  # no preview: the broken file reaches the stream
    # Find a seed that puts the broken file in the train split (deterministic).
    for seed in range(10):
        ds = load_folder(root, size=8, seed=seed, memory_budget_mb=TINY, test_fraction=0.2)
        paths = [ds.train_stream.path(i) for i in range(len(ds.train_stream))]
        broken = [i for i, p in enumerate(paths) if p.endswith("broken.png")]
        if broken:
            break
    assert broken, "no seed in 0..9 put broken.png in the train split"
    i = broken[0]
    x, ok, idx = ds.train_stream[i]
    assert ok is False and idx == i and x.shape == SHAPE and torch.equal(x, torch.zeros(SHAPE))
    assert ds.n_train + len(ds.test_x) == 21 and not ds.skipped  # the stream counts files, broken or not
    _, oks = _stacked(ds.train_stream)
    assert oks.sum() == ds.n_train - 1


def test_files_the_preview_found_broken_stay_out_of_the_stream(tmp_path):
    root = _folder(tmp_path, n=20)
    (root / "dogs" / "broken.png").write_bytes(b"not a png")
    for seed in range(10):
        ds = load_folder(root, size=8, seed=seed, memory_budget_mb=TINY)
        if ds.skipped:
            break
    assert len(ds.skipped) == 1 and ds.skipped[0].startswith("dogs/broken.png: ")  # reported once, here
    in_test = ds.n_train == len(ds.train_x) and ds.n_train + len(ds.test_x) == 20
    assert in_test or ds.n_train == len(ds.train_x) == 21 - 1 - len(ds.test_x)
    assert not any(ds.train_stream.path(i).endswith("broken.png") for i in range(ds.n_train))
    assert _stacked(ds.train_stream)[1].all()

    # A file deleted after listing is not ok either, and does not raise.
    gone = FolderImages([tmp_path / "gone.png"], [0], SHAPE)
    x, ok, _ = gone[0]
    assert ok is False and torch.equal(x, torch.zeros(SHAPE))


def test_an_os_error_while_decoding_is_not_ok(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk went away")

    monkeypatch.setattr(data, "preprocess", fail)
    x, ok, idx = FolderImages([tmp_path / "a.png", tmp_path / "b.png"], [0, 1], SHAPE)[1]
    assert ok is False and idx == 1 and torch.equal(x, torch.zeros(SHAPE))


def test_dataloader_workers_iterate_the_whole_stream(tmp_path):
    root = _folder(tmp_path)
    (root / "cats" / "zz_broken.png").write_bytes(b"not a png")
    ds = load_folder(root, size=8, memory_budget_mb=TINY)
    stream = pickle.loads(pickle.dumps(ds.train_stream))
    assert stream.files == ds.train_stream.files and torch.equal(stream.labels, ds.train_stream.labels)
    loader = torch.utils.data.DataLoader(ds.train_stream, batch_size=8, num_workers=2)
    seen, n_ok = [], 0
    for x, ok, idx in loader:
        assert x.dtype == torch.float32 and x.shape[1:] == SHAPE and 1 <= len(x) <= 8
        assert ok.dtype == torch.bool and ok.shape == (len(x),)
        assert idx.dtype == torch.int64 and idx.shape == (len(x),)
        assert torch.equal(x[~ok], torch.zeros((int((~ok).sum()), *SHAPE)))
        seen += idx.tolist()
        n_ok += int(ok.sum())
    assert seen == list(range(ds.n_train))
    broken_in_train = any(p.endswith("zz_broken.png") for p in ds.train_stream.files)
    assert n_ok == ds.n_train - broken_in_train


def test_the_env_var_sets_the_default_budget(tmp_path, monkeypatch):
    root = _folder(tmp_path, n=10)
    assert data.default_memory_budget_mb() == data.DEFAULT_MEMORY_BUDGET_MB == 2048.0
    assert not load_folder(root, size=8).streamed
    monkeypatch.setenv("VAE_MEMORY_BUDGET_MB", "0.001")
    assert data.default_memory_budget_mb() == 0.001
    assert load_folder(root, size=8).streamed
    assert not load_folder(root, size=8, memory_budget_mb=1.0).streamed  # the argument wins
    monkeypatch.setenv("VAE_MEMORY_BUDGET_MB", "lots")
    with pytest.raises(DataError, match="VAE_MEMORY_BUDGET_MB='lots'"):
        load_folder(root, size=8)


def test_load_dataset_passes_the_budget_to_folders_only(tmp_path, monkeypatch):
    load_moons = moons_module.load_moons
    monkeypatch.setattr(
        moons_module, "load_moons", lambda size, seed: load_moons(n_train=20, n_test=5, size=size, seed=seed)
    )
    root = _folder(tmp_path, n=10)
    ds = load_dataset(f"folder:{root}", image_size=8, memory_budget_mb=TINY)
    assert ds.streamed and ds.n_train == 9 and ds.image_shape == SHAPE
    assert not load_dataset(f"folder:{root}", image_size=8, memory_budget_mb=1.0).streamed
    moons = load_dataset("moons", memory_budget_mb=TINY)
    assert not moons.streamed and moons.n_train == len(moons.train_x) == 20 and "streamed" not in moons.info()


def test_the_same_folder_gives_the_same_streamed_split(tmp_path):
    root = _folder(tmp_path)
    a = load_folder(root, size=8, seed=1, memory_budget_mb=TINY)
    b = load_folder(root, size=8, seed=1, memory_budget_mb=TINY)
    c = load_folder(root, size=8, seed=2, memory_budget_mb=TINY)
    assert a.train_stream.files == b.train_stream.files
    assert torch.equal(a.test_x, b.test_x) and torch.equal(a.train_x, b.train_x)
    assert a.train_stream.files != c.train_stream.files


def test_preview_and_test_split_are_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "STREAM_PREVIEW", 5)
    monkeypatch.setattr(data, "STREAM_TEST_MAX", 3)
    ds = load_folder(_folder(tmp_path), size=8, memory_budget_mb=TINY, test_fraction=0.2)
    assert ds.n_train == 48 and len(ds.test_x) == 3  # 12 test files, 3 decoded; the rest unused
    assert ds.info()["n_test"] == 3 and ds.info()["n_train"] == 48
    assert ds.train_x.shape == (5, 1, 8, 8)
    x, _ = _stacked(ds.train_stream)
    assert torch.equal(ds.train_x, x[:5]) and torch.equal(ds.train_y, ds.train_stream.labels[:5])


def test_an_empty_preview_falls_back_to_the_test_shape(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "STREAM_PREVIEW", 0)
    root = _folder(tmp_path, n=10)
    ds = load_folder(root, size=8, channels=3, memory_budget_mb=TINY, test_fraction=0.3)
    assert ds.train_x.shape == (0, 3, 8, 8) and len(ds.test_x) == 3 and ds.n_train == 7
    assert ds.image_shape == (3, 8, 8) and ds.info()["image_shape"] == [3, 8, 8]
    empty = torch.zeros(0, dtype=torch.int64)
    bare = data.Dataset("x", torch.zeros(0), empty, torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.int64), ["a"])
    assert bare.image_shape == (3, 4, 4)
    # One test image and no preview: fewer than the 2 usable images a data set needs.
    with pytest.raises(DataError, match="1 usable"):
        load_folder(root, size=8, memory_budget_mb=TINY, test_fraction=0.1)


def test_streamed_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "missing", memory_budget_mb=TINY)
    with pytest.raises(DataError, match="0 usable"):
        load_folder(tmp_path, memory_budget_mb=0.0)  # no images at all
    for i in range(4):
        (tmp_path / f"bad{i}.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"0 usable image\(s\).*\(4 skipped\)") as e:
        load_folder(tmp_path, size=8, memory_budget_mb=TINY)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="not a number"):
        load_folder(tmp_path, memory_budget_mb=-1.0)
