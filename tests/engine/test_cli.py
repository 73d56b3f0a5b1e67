"""The command lines: `python -m vae.train` and `python -m vae.evaluate`.

Each subprocess imports torch (seconds), so only the end-to-end runs and one bad flag go through a
real process; the other error paths call ``train_main(argv)`` / ``evaluate_main(argv)`` in this process.
"""

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from vae_helpers import run_python

from vae.checkpoint import load_checkpoint, save
from vae.cli import build_parser, evaluate_main, image_count, int_list, train_main
from vae.config import ModelConfig, TrainConfig
from vae.evaluate import evaluate
from vae.models import build_model

PARSER_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "train_parser.json"

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


@pytest.fixture
def trained_copy(trained, tmp_path):
    """A copy of the trained checkpoint to change, and the checkpoint as it was."""
    out = tmp_path / "copy.safetensors"
    shutil.copy(trained[0], out)
    return out, load_checkpoint(out)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_bad_flag_exits_2_with_one_line():
    r = _run("vae.train", "--bogus")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = _error_lines(r.stderr, "python -m vae.train: error")
    assert len(lines) == 1 and lines[0].startswith("python -m vae.train: error") and "--bogus" in lines[0]
    assert r.stdout == ""


@pytest.mark.slow
@pytest.mark.parametrize("module", ["vae.train", "vae.evaluate"])
def test_each_command_answers_help(module):
    r = _run(module, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: python -m {module}") and "Traceback" not in r.stderr


# Runs MODULE as `python -m` does and lists the modules in which its class CLS was defined: the module's
# body runs once (as itself, imported by vae.cli), not also as __main__.
DEFINED_ONCE = """
import json, os, runpy, sys
import torch  # before the profile: it then sees this repository's modules only
module, cls = sys.argv[1:3]
path = os.path.join("vae", module.split(".")[1] + ".py")
bodies = []

def profile(frame, event, arg):
    if event == "call" and frame.f_code.co_name == cls and frame.f_code.co_filename.endswith(path):
        bodies.append(frame.f_globals["__name__"])

sys.argv = [module, "--help"]
sys.setprofile(profile)
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
sys.setprofile(None)
print(json.dumps({"code": code, "bodies": bodies}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("module,cls", [("vae.train", "Progress"), ("vae.evaluate", "ImageScore")])
def test_python_m_defines_the_module_once(module, cls):
    r = run_python("-c", DEFINED_ONCE, module, cls)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"code": 0, "bodies": [module]}


# --------------------------------------------------------------------------- in-process


@pytest.fixture
def tiny_moons(monkeypatch, moons):
    """In-process runs load the tiny moons instead of rendering all 7,000 (training's and evaluation's
    load_dataset)."""
    import vae.cli
    import vae.run

    names = []

    def fake(name, *args, **kwargs):
        names.append(name)
        return moons

    monkeypatch.setattr(vae.run, "load_dataset", fake)
    monkeypatch.setattr(vae.cli, "load_dataset", fake)
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
        train_main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m vae.train: error") and needle in lines[0]


def test_out_of_range_value_exits_1_with_one_error_line(tmp_path, capsys, tiny_moons):
    out = tmp_path / "x.safetensors"
    rc = train_main([*SMALL, "--latent-dim", "500", "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "latent_dim" in err[0]
    assert not out.exists()


def test_refuses_to_overwrite_without_flag(tmp_path, capsys, tiny_moons):
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"precious")
    assert train_main([*SMALL, "--epochs", "1", "--out", str(out)]) == 2  # argparse's status for bad flags
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert out.read_bytes() == b"precious"


@pytest.mark.slow
def test_a_run_in_progress_on_the_same_file_is_refused(tmp_path, capsys, tiny_moons):
    """The app (or another CLI run) holds OUT.lock while it trains into OUT: the CLI must not write OUT."""
    out = tmp_path / "busy.safetensors"
    lock = tmp_path / "busy.safetensors.lock"
    lock.touch()
    rc = train_main([*SMALL, "--epochs", "1", "--iwae-k", "0", "--overwrite", "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another training run" in err[0]
    assert not out.exists() and lock.exists()  # the other run's lock is left alone
    lock.unlink()
    assert train_main([*SMALL, "--epochs", "1", "--iwae-k", "0", "--overwrite", "--out", str(out)]) == 0
    assert out.exists() and not lock.exists()  # released after the run


@pytest.mark.slow
def test_resume_continues(trained_copy, capsys, tiny_moons):
    out, before = trained_copy
    rc = train_main([*SMALL, "--epochs", "2", "--iwae-k", "0", "--resume", "--out", str(out)])
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
    rc = train_main([*SMALL, "--epochs", "2", "--resume", "--out", str(out)])
    assert rc == 0 and "already has 2 epochs" in capsys.readouterr().out


def test_resume_needs_an_existing_checkpoint(tmp_path, capsys):
    assert train_main(["--resume", "--out", str(tmp_path / "missing.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume needs --out" in err[0]


def test_resume_from_a_broken_checkpoint_exits_1(tmp_path, capsys):
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"\x80\x04 definitely a pickle")
    assert train_main(["--resume", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "pickle" in err[0]


@pytest.fixture
def no_download(monkeypatch):
    """torchvision's MNIST download fails at once (tests never download)."""
    import torchvision.datasets

    def refuse(self, *a, **k):
        raise RuntimeError("no downloads in tests")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", refuse)


def test_missing_mnist_exits_1(tmp_path, capsys, no_download):
    rc = train_main(["--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "m.safetensors")])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "train-images-idx3-ubyte" in err[0]


def test_mnist_is_never_trained_on_the_shipped_test_set(tmp_path, capsys, no_download):
    """A fresh clone ($VAE_DATA_DIR points nowhere, no --data-dir) has MNIST's test set but no training images."""
    out = tmp_path / "m.safetensors"
    assert train_main(["--dataset", "mnist", "--epochs", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train-images-idx3-ubyte" in err[0] and "VAE_DATA_DIR" in err[0]
    assert not out.exists()


def test_evaluate_mnist_without_its_files_scores_the_shipped_test_set(tmp_path, capsys):
    torch.manual_seed(0)
    cfg = ModelConfig(image_shape=(1, 28, 28), hidden=(8,), latent_dim=2)
    path = save(
        tmp_path / "m.safetensors", build_model(cfg), train=TrainConfig(dataset="mnist"), dataset={"name": "mnist"}
    )
    assert evaluate_main([str(path), "--iwae-k", "0", "--limit", "16"]) == 0
    captured = capsys.readouterr()
    assert "note: MNIST's 10,000 test digits come from the copy shipped in vae/assets/mnist" in captured.err
    assert "16 test images of mnist (the copy shipped in vae/assets)" in captured.out
    assert evaluate_main([str(path), "--iwae-k", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 10_000


@pytest.mark.parametrize("argv", [["--iwae-k", "-1"], ["--limit", "0"], ["--bogus"]])
def test_evaluate_bad_flags(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as e:
        evaluate_main([str(tmp_path / "m.safetensors"), *argv])
    assert e.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m vae.evaluate: error")


def test_evaluate_bad_checkpoint_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nonsense that is long enough")
    assert evaluate_main([str(bad), "--json"]) == 1
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


@pytest.mark.slow
def test_evaluate_save_iwae_records_the_figure_for_the_model_card(trained_copy, tiny_moons, capsys):
    """--save-iwae rewrites the checkpoint with iwae, iwae_k and iwae_n; weights and other metrics stay."""
    out, before = trained_copy
    assert evaluate_main([str(out), "--iwae-k", "7", "--limit", "20", "--json", "--save-iwae"]) == 0
    res = json.loads(capsys.readouterr().out)
    after = load_checkpoint(out)
    assert after.metrics["iwae_k"] == 7 and after.metrics["iwae_n"] == 20 and after.metrics["iwae"] == res["iwae"]
    assert after.metrics["elbo"] == before.metrics["elbo"] and after.metrics["n"] == before.metrics["n"]
    assert all(torch.equal(a, b) for a, b in zip(after.model.state_dict().values(), before.model.state_dict().values()))
    assert sorted(p.name for p in out.parent.iterdir()) == ["copy.safetensors"]  # no lock or temporary file left


# --------------------------------------------------------------------------- flags generated from the config schema


def describe(action: argparse.Action) -> dict:
    """What a flag is, as the fixture records it (dumped from the parser written by hand, before generation)."""
    t = action.type
    return {
        "option_strings": action.option_strings,
        "dest": action.dest,
        "default": action.default,
        "type": None if t is None else getattr(t, "__name__", repr(t)),
        "choices": list(action.choices) if action.choices is not None else None,
        "nargs": action.nargs,
        "const": action.const,
        "action": type(action).__name__,
        "metavar": action.metavar,
        "help": action.help,
        "required": action.required,
    }


ADDED_SINCE_THE_FIXTURE = {"iwae_n", "kl_warmup"}  # run flags added after the parser was generated (checked below)


def test_the_generated_parser_matches_the_hand_written_one():
    """Same flags, dests, defaults, types, choices, actions and help; only their order in --help may differ."""
    before = {d["dest"]: d for d in json.loads(PARSER_FIXTURE.read_text())}
    now = {a.dest: describe(a) for a in build_parser()._actions if a.dest not in ADDED_SINCE_THE_FIXTURE}
    assert sorted(now) == sorted(before)
    for dest, was in before.items():
        assert now[dest] == was, dest


def test_every_flagged_config_field_is_a_flag_with_the_field_default():
    flags = {s: a for a in build_parser()._actions for s in a.option_strings}
    for cls in (ModelConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            if "flag" in f.metadata:
                action = flags[f.metadata["flag"]]
                assert action.default == f.default, f.name
                assert list(action.choices or ()) == list(f.metadata.get("choices", ())), f.name


class _Captured(Exception):
    pass


@pytest.fixture
def captured(monkeypatch, tiny_moons):
    """Run ``_run`` up to the first step: record the configs the run starts from instead of training."""
    import vae.cli

    seen = {}
    real = vae.cli.run_training

    def fake(spec, callback, *, on_ready):
        def record(r):
            seen.update(model=r.model_config, train=r.train_config, out=spec.out)
            raise _Captured

        return real(spec, callback, on_ready=record)

    monkeypatch.setattr(vae.cli, "run_training", fake)

    def run(*argv: str) -> dict:
        with pytest.raises(_Captured):
            vae.cli._run(build_parser().parse_args(list(argv)))
        return seen

    return run


def test_flags_build_the_configs(tmp_path, captured):
    out = tmp_path / "x.safetensors"
    seen = captured(
        *("--dataset", "moons", "--kind", "ae", "--hidden", "24,12", "--latent-dim", "3", "--epochs", "4"),
        *("--batch-size", "32", "--lr", "0.01", "--beta", "2.5", "--likelihood", "gaussian", "--sigma", "0.3"),
        *("--learn-sigma", "--mc-samples", "2", "--binarize", "--seed", "9", "--data-dir", "/d", "--device", "cpu"),
        *("--precision", "bf16", "--compile", "--memory-budget", "12.5", "--workers", "2", "--out", str(out)),
    )
    expected = {"kind": "ae", "hidden": [24, 12], "latent_dim": 3, "beta": 2.5, "likelihood": "gaussian"}
    expected |= {"sigma": 0.3, "learn_sigma": True, "mc_samples": 2, "binarize": True, "image_shape": [1, 28, 28]}
    assert seen["model"] == ModelConfig.from_dict({**ModelConfig().to_dict(), **expected})
    assert seen["train"] == TrainConfig(
        dataset="moons",
        epochs=4,
        batch_size=32,
        lr=0.01,
        seed=9,
        data_dir="/d",
        device="cpu",
        precision="bf16",
        compile=True,
        memory_budget_mb=12.5,
        workers=2,
    )
    assert seen["out"] == out and not out.exists()


def test_no_flags_build_the_default_configs(tmp_path, captured):
    seen = captured("--out", str(tmp_path / "a.safetensors"))
    assert seen["model"] == ModelConfig(image_shape=(1, 28, 28)) and seen["model"].hidden == (400,)
    assert seen["train"] == TrainConfig()
    seen = captured("--arch", "conv", "--out", str(tmp_path / "b.safetensors"))
    assert seen["model"] == ModelConfig(arch="conv", hidden=(32, 64))  # --hidden's default follows --arch


@pytest.mark.slow
@pytest.mark.parametrize("every", [0.0, 3600.0])
def test_logs_for_files_have_no_carriage_returns_and_one_line_per_epoch(
    tmp_path, capsys, tiny_moons, monkeypatch, every
):
    """stderr is not a terminal here (as in CI or `> log`): no progress bar; one stdout line per epoch,
    and within an epoch at most one plain stderr line every LOG_SECONDS."""
    import vae.cli

    monkeypatch.setattr(vae.cli._Report, "LOG_SECONDS", every)
    argv = ["--dataset", "moons", "--hidden", "16", "--latent-dim", "2", "--batch-size", "32", "--epochs", "2"]
    assert train_main([*argv, "--iwae-k", "0", "--out", str(tmp_path / "m.safetensors")]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in out + err
    epochs = [ln for ln in out.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(":")[0] for ln in epochs] == ["epoch 1/2", "epoch 2/2"]
    steps = [ln for ln in err.splitlines() if ln.startswith("epoch ")]
    if every:
        assert steps == []  # a short run logs nothing between its epoch lines
    else:
        assert steps and all(" step " in ln and "images/s" in ln for ln in steps)


# --------------------------------------------------------------------------- the end-of-run evaluation


def test_iwae_n_parses_a_count_or_all():
    parser = build_parser()
    assert parser.parse_args([]).iwae_n == 1000  # the default: the first 1,000 test images
    assert parser.parse_args(["--iwae-n", "250"]).iwae_n == 250
    assert parser.parse_args(["--iwae-n", "all"]).iwae_n is None  # the whole test set
    for bad in ("0", "-3", "some"):
        with pytest.raises(argparse.ArgumentTypeError):
            image_count(bad)


@pytest.mark.slow
@pytest.mark.parametrize("flags,iwae_n", [(["--iwae-n", "16"], 16), (["--iwae-n", "all"], 64), ([], 64)])
def test_the_end_of_run_iwae_covers_the_first_iwae_n_test_images(tmp_path, capsys, tiny_moons, moons, flags, iwae_n):
    """The ELBO covers all 64 test images; the IWAE the first --iwae-n (the default 1,000 is more than 64),
    as the checkpoint's iwae_n and the last line say."""
    out = tmp_path / "m.safetensors"
    argv = ["--dataset", "moons", "--hidden", "16", "--latent-dim", "2", "--batch-size", "64", "--epochs", "1"]
    assert train_main([*argv, "--quiet", "--iwae-k", "3", *flags, "--out", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    m = load_checkpoint(out).metrics
    assert {"elbo", "recon", "kl", "iwae", "iwae_k", "active_units", "n", "iwae_n"} <= set(m)
    assert m["n"] == 64 and m["iwae_k"] == 3 and m["iwae_n"] == iwae_n
    assert m["iwae"] == pytest.approx(evaluate(load_checkpoint(out).model, moons.test_x, 3, iwae_limit=iwae_n)["iwae"])
    assert "IWAE(k=3)" in last and "evaluated in" in last
    assert ("on the first 16 of 64 test images" in last) == (iwae_n == 16)


@pytest.mark.slow
def test_no_iwae_covers_no_images(tmp_path, tiny_moons):
    out = tmp_path / "m.safetensors"
    argv = ["--dataset", "moons", "--hidden", "16", "--latent-dim", "2", "--batch-size", "64", "--epochs", "1"]
    assert train_main([*argv, "--quiet", "--iwae-k", "0", "--out", str(out)]) == 0
    m = load_checkpoint(out).metrics
    assert m["iwae"] is None and m["iwae_n"] == 0 and m["n"] == 64
