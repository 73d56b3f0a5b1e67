"""The command lines: `python -m vae.train` and `python -m vae.evaluate`.

Each subprocess imports torch (seconds), so only the end-to-end runs and one bad flag go through a
real process; the other error paths call ``main(argv)`` in this process.
"""

import argparse
import importlib
import json
import shutil

import pytest
from vae_helpers import run_python

from vae.checkpoint import load_checkpoint
from vae.cli import int_list

# The modules (`vae.evaluate` the attribute may be the function of that name).
train_cli = importlib.import_module("vae.train")
evaluate_cli = importlib.import_module("vae.evaluate")

SMALL = ["--dataset", "moons", "--hidden", "16", "--latent-dim", "2", "--batch-size", "500", "--quiet"]


def _run(module, *args, timeout=300):
    return run_python("-m", module, *args, timeout=timeout)


def _error_lines(stderr: str, prefix: str) -> list[str]:
    """stderr lines that are not Python warnings (a warning line and its indented source line)."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    return [ln for ln in lines if ln.startswith(prefix) or not ("Warning" in ln or ln.startswith(" "))]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real `python -m vae.train` run: 1 epoch on moons."""
    out = tmp_path_factory.mktemp("cli") / "m.safetensors"
    r = _run("vae.train", *SMALL, "--epochs", "1", "--iwae-k", "10", "--threads", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    return out, r


def test_train_writes_a_loadable_checkpoint(trained):
    out, r = trained
    assert "Traceback" not in r.stderr
    assert f"saved {out}" in r.stdout and "IWAE(k=10)" in r.stdout
    ckpt = load_checkpoint(out)
    assert ckpt.config.latent_dim == 2 and ckpt.config.hidden == (16,) and ckpt.config.image_shape == (1, 28, 28)
    assert ckpt.train is not None and ckpt.train.dataset == "moons" and ckpt.train.epochs == 1
    assert len(ckpt.history["epochs"]) == 1
    assert ckpt.metrics["iwae_k"] == 10 and ckpt.metrics["n"] == 1000
    assert ckpt.dataset["name"] == "moons"
    assert ckpt.optimizer is not None
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary files left


def test_evaluate_json(trained):
    out, _ = trained
    r = _run("vae.evaluate", out, "--iwae-k", "10", "--limit", "50", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)  # exactly one JSON object, nothing else on stdout
    assert isinstance(res, dict)
    assert {"elbo", "recon", "kl", "iwae", "iwae_k", "active_units"} <= set(res)
    assert res["iwae_k"] == 10 and res["n"] == 50
    assert res["elbo"] == pytest.approx(res["recon"] - res["kl"], abs=1e-3)
    assert res["iwae"] is not None and res["iwae"] > res["elbo"] - 5


def test_bad_flag_exits_2_with_one_line():
    r = _run("vae.train", "--bogus")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = _error_lines(r.stderr, "python -m vae.train: error")
    assert len(lines) == 1 and lines[0].startswith("python -m vae.train: error") and "--bogus" in lines[0]
    assert r.stdout == ""


# --------------------------------------------------------------------------- in-process


@pytest.fixture
def tiny_moons(monkeypatch, moons):
    """In-process runs load the tiny moons instead of rendering all 7,000 (vae.data.load_dataset)."""
    import vae.data

    names = []

    def fake(name, *args, **kwargs):
        names.append(name)
        return moons

    monkeypatch.setattr(vae.data, "load_dataset", fake)
    return names


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--latent-dim", "abc"], "--latent-dim"),
        (["--hidden", "4,x"], "--hidden"),
        (["--kind", "gan"], "--kind"),
        (["--bogus"], "--bogus"),
    ],
)
def test_train_bad_flags(capsys, argv, needle):
    with pytest.raises(SystemExit) as e:
        train_cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m vae.train: error") and needle in lines[0]


def test_out_of_range_value_exits_1_with_one_error_line(tmp_path, capsys, tiny_moons):
    out = tmp_path / "x.safetensors"
    rc = train_cli.main([*SMALL, "--latent-dim", "500", "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "latent_dim" in err[0]
    assert not out.exists()


def test_refuses_to_overwrite_without_flag(tmp_path, capsys, tiny_moons):
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"precious")
    assert train_cli.main([*SMALL, "--epochs", "1", "--out", str(out)]) == 2  # argparse's status for bad flags
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert out.read_bytes() == b"precious"


def test_a_run_in_progress_on_the_same_file_is_refused(tmp_path, capsys, tiny_moons):
    """The app (or another CLI run) holds OUT.lock while it trains into OUT: the CLI must not write OUT."""
    out = tmp_path / "busy.safetensors"
    lock = tmp_path / "busy.safetensors.lock"
    lock.touch()
    rc = train_cli.main([*SMALL, "--epochs", "1", "--iwae-k", "0", "--overwrite", "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another training run" in err[0]
    assert not out.exists() and lock.exists()  # the other run's lock is left alone
    lock.unlink()
    assert train_cli.main([*SMALL, "--epochs", "1", "--iwae-k", "0", "--overwrite", "--out", str(out)]) == 0
    assert out.exists() and not lock.exists()  # released after the run


def test_resume_continues(trained, tmp_path, capsys, tiny_moons):
    src, _ = trained
    out = tmp_path / "r.safetensors"
    shutil.copy(src, out)
    before = load_checkpoint(out)
    rc = train_cli.main([*SMALL, "--epochs", "2", "--iwae-k", "0", "--resume", "--out", str(out)])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert "resuming" in stdout and "epoch 2" in stdout
    after = load_checkpoint(out)
    assert [e["epoch"] for e in after.history["epochs"]] == [1, 2]
    assert after.history["epochs"][0] == before.history["epochs"][0]
    assert after.train.epochs == 2 and after.config == before.config
    assert tiny_moons == ["moons"]  # the data set named in the checkpoint
    assert float(after.optimizer["state"][0]["step"]) == float(before.optimizer["state"][0]["step"]) + 1
    # Nothing left to do: a no-op that says so.
    rc = train_cli.main([*SMALL, "--epochs", "2", "--resume", "--out", str(out)])
    assert rc == 0 and "already has 2 epochs" in capsys.readouterr().out


def test_resume_needs_an_existing_checkpoint(tmp_path, capsys):
    assert train_cli.main(["--resume", "--out", str(tmp_path / "missing.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume needs --out" in err[0]


def test_resume_from_a_broken_checkpoint_exits_1(tmp_path, capsys):
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"\x80\x04 definitely a pickle")
    assert train_cli.main(["--resume", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "pickle" in err[0]


def test_missing_mnist_exits_1(tmp_path, capsys, monkeypatch):
    import torchvision.datasets

    def refuse(self, *a, **k):
        raise RuntimeError("no downloads in tests")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", refuse)
    rc = train_cli.main(["--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "m.safetensors")])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "train-images-idx3-ubyte" in err[0]


@pytest.mark.parametrize("argv", [["--iwae-k", "-1"], ["--limit", "0"], ["--bogus"]])
def test_evaluate_bad_flags(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as e:
        evaluate_cli.main([str(tmp_path / "m.safetensors"), *argv])
    assert e.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m vae.evaluate: error")


def test_evaluate_bad_checkpoint_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nonsense that is long enough")
    assert evaluate_cli.main([str(bad), "--json"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "bad.safetensors" in lines[0]
    assert captured.out == ""


def test_int_list():
    assert int_list("512,256") == (512, 256)
    assert int_list("400") == (400,)
    assert int_list(" 8, 16 ,") == (8, 16)
    for bad in ("", "a,b", "0", "-4", ","):
        with pytest.raises(argparse.ArgumentTypeError):
            int_list(bad)
