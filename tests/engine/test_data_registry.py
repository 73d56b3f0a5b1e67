"""vae.datasets: the registry every data-set question goes through (names, loaders, inputs, availability,
offline fallback), and that a new data set is one file."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

import vae.datasets
import vae.datasets.core as core
from vae import data
from vae.config import TrainConfig, meta
from vae.datasets import cli_help, find, get, load, names, specs
from vae.datasets.core import Absent, DataError, DataSpec
from vae.datasets.mnist import MNIST_FILES

ALL = ("moons", "digits", "mnist", "fashion-mnist", "folder")


def test_every_data_set_is_registered_once_in_order():
    assert names()[: len(ALL)] == ALL
    assert [s.name for s in specs()] == list(names())
    assert data.DATASETS == tuple(n for n in names() if n != "folder")
    # The command line's --dataset help is the registry's.
    assert cli_help().startswith("moons | digits | mnist | fashion-mnist") and cli_help().endswith("folder:PATH")
    assert meta(TrainConfig, "dataset")["help"] == cli_help()


def test_names_resolve_as_the_cli_and_checkpoints_write_them():
    assert get("folder:/some/where") is get("folder:") is find("folder:x")
    assert get("moons").name == "moons" and data.spec("mnist") is get("mnist")
    for bad in ("imagenet", "folder", "moons:x", ""):
        with pytest.raises(
            DataError, match="unknown data set .*use one of moons, digits, mnist, fashion-mnist or folder:PATH"
        ):
            get(bad)
        assert find(bad) is None


@pytest.mark.parametrize(
    "name,inputs,style,dark,labels",
    [
        ("moons", (), "plain", True, 8),
        ("digits", (), "digit-8x8", True, 10),
        ("mnist", ("data_dir",), "digit", True, 10),
        ("fashion-mnist", ("data_dir",), "centered", True, 10),
        ("folder", ("folder", "image_size", "channels"), "plain", False, 0),
    ],
)
def test_what_each_entry_says(name, inputs, style, dark, labels):
    s = get("folder:" if name == "folder" else name)
    assert (s.inputs, s.style, s.dark_background, len(s.label_names)) == (inputs, style, dark, labels)
    assert s.title and s.summary and s.form_name == ("image folder" if name == "folder" else name)


def test_the_loaded_data_matches_its_entry(tmp_path):
    for name in ("digits", "mnist"):
        ds = load(name, need_train=False, download=False)
        s = get(name)
        assert (ds.style, ds.dark_background, tuple(ds.label_names)) == (s.style, s.dark_background, s.label_names)


def test_absent_mnist_files_are_said_before_loading(tmp_path):
    mnist = get("mnist")
    absent = mnist.absent(str(tmp_path))
    assert isinstance(absent, Absent) and absent.what == "files not found"
    assert str(tmp_path) in str(absent) and all(f in str(absent) for f in MNIST_FILES)
    assert "the default data folder" in str(mnist.absent(None))
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in MNIST_FILES[:3]:
        (raw / f).write_bytes(b"")
    (raw / f"{MNIST_FILES[3]}.gz").write_bytes(b"")
    assert mnist.absent(str(tmp_path)) is None  # present (as they are or gzipped): what the loader reads
    assert get("fashion-mnist").absent(str(tmp_path)) is not None  # its own folder, FashionMNIST/raw
    assert get("moons").absent() is None and get("digits").absent() is None


def test_the_offline_fallback_is_the_entrys(tmp_path):
    assert get("mnist").fallback is not None and get("fashion-mnist").fallback is None
    ds = load("mnist", data_dir=str(tmp_path), need_train=False)
    assert ds.n_train == 0 and len(ds.test_x) == 10_000 and str(tmp_path / "MNIST" / "raw") in ds.note
    with pytest.raises(DataError, match="28x28"):
        load("mnist", image_size=32)


def test_an_entry_is_checked_when_it_is_made():
    with pytest.raises(ValueError, match="style must be one of"):
        DataSpec("x", "X", "x", load=lambda req: None, style="sketchy")
    with pytest.raises(ValueError, match="unknown inputs"):
        DataSpec("x", "X", "x", load=lambda req: None, inputs=("colour",))


def test_the_disk_cache_writes_through_atomic_write(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path))
    assert data.cache_dir() == tmp_path
    written = []
    real = core.atomic_write
    monkeypatch.setattr(core, "atomic_write", lambda path, write: written.append(path) or real(path, write))
    assert core.disk_cached("t", "k", lambda: {"a": np.arange(3)})["a"].tolist() == [0, 1, 2]
    assert written == [next(tmp_path.iterdir())]

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    assert core.disk_cached("t", "other", lambda: {"a": np.arange(2)})["a"].tolist() == [0, 1]
    assert len(list(tmp_path.iterdir())) == 1  # the failed write left no temporary file


NEW_DATA_SET = '''
"""Squares: a tiny made-up data set, the whole of it in this one file."""

import torch

from vae.datasets.core import Dataset, DataSpec


def _load(req):
    g = torch.Generator().manual_seed(req.seed)
    x = torch.rand(12, 1, 8, 8, generator=g)
    y = torch.arange(12) % 2
    return Dataset("squares", x[:8], y[:8], x[8:], y[8:], ["dark", "light"])


SPEC = DataSpec("squares", "Squares", "Twelve random 8x8 squares.", load=_load, order=50, label_names=("dark", "light"))
'''


@pytest.fixture
def one_more_file(tmp_path, monkeypatch):
    """A folder with one new data-set module, seen by the registry as part of vae/datasets/."""
    (tmp_path / "squares.py").write_text(NEW_DATA_SET)
    monkeypatch.setattr(vae.datasets, "__path__", [*vae.datasets.__path__, str(tmp_path)])
    vae.datasets._registry.cache_clear()
    yield
    vae.datasets._registry.cache_clear()
    sys.modules.pop("vae.datasets.squares", None)


def test_a_new_data_set_is_one_file(one_more_file):
    from services.training import build_configs, choices, data_inputs, unavailable

    assert "squares" in names() and "squares" in cli_help()
    ds = data.load_dataset("squares", seed=1)
    assert ds.image_shape == (1, 8, 8) and ds.n_train == 8 and torch.equal(ds.test_y, torch.tensor([0, 1, 0, 1]))
    # The Train form offers it, with no inputs, trainable here; its run names it.
    assert "squares" in choices() and data_inputs("squares") == () and unavailable("squares") is None
    _, train = build_configs("squares", {"hidden": "8"})
    assert train.dataset == "squares"
