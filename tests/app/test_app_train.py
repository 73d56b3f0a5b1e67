"""The Train page under Streamlit's AppTest: a tiny run in the background, a loadable checkpoint, refused names."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vae.checkpoint import load_checkpoint
from vae.jobs import MANAGER

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "1_Train.py")
HOME = str(ROOT / "app.py")


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """Trained checkpoints go to a private folder (set before any AppTest runs)."""
    folder = tmp_path / "trained"
    monkeypatch.setenv("VAE_TRAINED_DIR", str(folder))
    return folder


def fill(at: AppTest, name: str, hidden: str = "32") -> None:
    at.number_input(key="tr_epochs").set_value(1)
    at.text_input(key="tr_hidden").set_value(hidden)
    at.text_input(key="tr_name").set_value(name)


def jobs_named(name: str) -> list:
    return [j for j in MANAGER.jobs() if j.name == name]


def test_one_tiny_epoch_gives_a_loadable_checkpoint(trained):
    name = f"t-{uuid.uuid4().hex[:8]}"
    # Start at the home page (the entry point) so that 'Use this model' can switch back to it.
    at = AppTest.from_file(HOME, default_timeout=180)
    at.switch_page("pages/1_Train.py").run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Train"]
    assert at.selectbox(key="tr_dataset").value == "moons"
    fill(at, name)
    at.button(key="tr_start").click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert [s.value for s in at.success] == [f"Started {name}: it writes {name}.safetensors after each epoch."]
    job = MANAGER.get(at.session_state["tr_job"])
    assert job is not None and job.name == name
    assert job.path == trained / f"{name}.safetensors"

    # The same name again, while the first run trains or just after: refused, no second job.
    at.button(key="tr_start").click().run()
    no_exception(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Cannot start:") and repr(name) in errors[0]
    assert jobs_named(name) == [job]

    job.wait(180)
    assert job.status == "done", job.message
    ckpt = load_checkpoint(job.path)
    assert ckpt.config.hidden == (32,) and ckpt.config.kind == "vae" and ckpt.config.latent_dim == 16
    assert ckpt.dataset["name"] == "moons"
    assert len(ckpt.history["epochs"]) == 1
    assert ckpt.metrics["elbo"] < 0
    assert sorted(p.name for p in trained.iterdir()) == [f"{name}.safetensors"]

    at.run()  # the job panel: finished, with its test ELBO
    no_exception(at)
    assert any(s.value.startswith("Training runs") for s in at.subheader)
    assert any(m.value.startswith(f"**{name}** · moons · VAE mlp z=16 · *done*") for m in at.markdown)
    assert any(s.value.startswith("Test ELBO") for s in at.success)

    at.button(key=f"tr_use_{job.id}").click().run()  # back home, with the new model picked
    no_exception(at)
    assert at.session_state["model_choice"] == f"{name} (trained here)"
    assert at.subheader[0].value == f"Model card · {name}"
    card = {m.label: m.value for m in at.metric}
    assert card["Data set"] == "moons" and card["Epochs"] == "1"
    assert float(card["Test ELBO (nats)"]) == pytest.approx(ckpt.metrics["elbo"], abs=0.01)


@pytest.mark.parametrize("bad", ["../x", "/tmp/x", "a/b", "", "x" * 65])
def test_an_unsafe_name_is_refused(trained, tmp_path, bad):
    before = sorted(tmp_path.rglob("*"))
    n_jobs = len(MANAGER.jobs())
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    fill(at, bad)
    at.button(key="tr_start").click().run()
    no_exception(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Cannot start: a checkpoint name is 1 to 64")
    assert not any(s.value.startswith("Started") for s in at.success)
    assert "tr_job" not in at.session_state
    assert len(MANAGER.jobs()) == n_jobs
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, not even the trained folder
    for where in (tmp_path.parent, ROOT, ROOT / "checkpoints", Path("/tmp")):
        assert not (where / "x.safetensors").exists() and not (where / "x.safetensors.lock").exists()


def test_bad_hidden_sizes_are_refused(trained):
    n_jobs = len(MANAGER.jobs())
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    fill(at, f"t-{uuid.uuid4().hex[:8]}", hidden="32,abc")
    at.button(key="tr_start").click().run()
    no_exception(at)
    assert len(at.error) == 1 and at.error[0].value.startswith("Cannot start:")
    assert len(MANAGER.jobs()) == n_jobs
    assert not trained.exists()
