"""vae.registry: safe checkpoint names, where trained checkpoints go, the picker's list."""

from __future__ import annotations

import os

import pytest

from services.registry import (
    DEFAULT_CHECKPOINT,
    Entry,
    check_name,
    checkpoint_dir,
    list_checkpoints,
    trained_dir,
    trained_path,
)
from vae.checkpoint import load_checkpoint, save


@pytest.mark.parametrize("name", ["a-1_b", "a", "9", "moons-vae", "A_B-c", "x" * 64])
def test_check_name_accepts_safe_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x",
        "..",
        ".",
        "/abs",
        "a/b",
        "a\\b",
        "x\x00y",
        "x" * 65,
        "-a",
        "_a",
        ".hidden",
        "a b",
        "a.safetensors",
        "abc\n",
        "é",
        None,
        42,
    ],
)
def test_check_name_rejects_unsafe_names(name):
    with pytest.raises(ValueError, match="1 to 64"):
        check_name(name)


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    committed, trained = tmp_path / "ckpts", tmp_path / "mine"
    committed.mkdir()
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(committed))
    monkeypatch.setenv("VAE_TRAINED_DIR", str(trained))
    return committed, trained


def test_dirs_follow_the_environment(dirs, monkeypatch):
    committed, trained = dirs
    assert checkpoint_dir() == committed and trained_dir() == trained
    monkeypatch.delenv("VAE_TRAINED_DIR")
    assert trained_dir() == committed / "trained"  # the default: a sub-folder of the checkpoint folder


@pytest.mark.parametrize("name", ["a-1_b", "x" * 64, "z"])
def test_trained_path_stays_inside_the_trained_dir(dirs, name):
    _, trained = dirs
    p = trained_path(name)
    assert p.parent == trained
    assert p.name == f"{name}.safetensors"
    assert p.resolve().is_relative_to(trained.resolve())


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b", "", "..", "x\x00y"])
def test_trained_path_refuses_unsafe_names(dirs, name):
    with pytest.raises(ValueError):
        trained_path(name)


def test_list_checkpoints_default_first_then_trained_newest_first(dirs, tiny_model):
    committed, trained = dirs
    for name in ("zeta", DEFAULT_CHECKPOINT, "alpha"):
        save(committed / f"{name}.safetensors", tiny_model, dataset={"name": "moons"})
    (committed / "notes.txt").write_text("not a checkpoint")
    old = save(trained / "old-run.safetensors", tiny_model)
    new = save(trained / "new-run.safetensors", tiny_model)
    os.utime(old, (1_000_000, 1_000_000))
    os.utime(new, (2_000_000, 2_000_000))

    entries = list_checkpoints()
    assert [e.name for e in entries] == [DEFAULT_CHECKPOINT, "alpha", "zeta", "new-run", "old-run"]
    assert [e.source for e in entries] == ["committed"] * 3 + ["trained"] * 2
    assert [e.label for e in entries] == [
        DEFAULT_CHECKPOINT,
        "alpha",
        "zeta",
        "new-run (trained here)",
        "old-run (trained here)",
    ]
    assert entries[0].path == committed / f"{DEFAULT_CHECKPOINT}.safetensors"
    assert all(isinstance(e, Entry) and e.path.exists() for e in entries)
    for e in entries:  # every listed file is a loadable checkpoint
        assert load_checkpoint(e.path).config == tiny_model.config

    os.utime(old, (3_000_000, 3_000_000))  # retrained later: now the newest
    assert [e.name for e in list_checkpoints()][3:] == ["old-run", "new-run"]


def test_list_checkpoints_without_a_default_or_a_trained_folder(dirs, tiny_model):
    committed, trained = dirs
    assert list_checkpoints() == []  # empty folder, no trained folder at all
    save(committed / "b.safetensors", tiny_model)
    save(committed / "a.safetensors", tiny_model)
    assert [e.name for e in list_checkpoints()] == ["a", "b"]
    assert not trained.exists()


def test_default_trained_subfolder_is_not_listed_as_committed(dirs, monkeypatch, tiny_model):
    committed, _ = dirs
    monkeypatch.delenv("VAE_TRAINED_DIR")
    save(committed / f"{DEFAULT_CHECKPOINT}.safetensors", tiny_model)
    save(committed / "trained" / "mine.safetensors", tiny_model)
    entries = list_checkpoints()
    assert [(e.name, e.source) for e in entries] == [(DEFAULT_CHECKPOINT, "committed"), ("mine", "trained")]
