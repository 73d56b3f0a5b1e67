"""The Train page under Streamlit's AppTest: a tiny run in the background, a loadable checkpoint, refused names
and settings (before any job starts), dismissed runs, and the fields each data set shows."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from services.jobs import MANAGER
from vae.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
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


def keys(widgets) -> set[str]:
    return {w.key for w in widgets}


def refused(at: AppTest, n_jobs: int) -> str:
    """The one error shown after pressing Start; no job started, none remembered by the session."""
    no_exception(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Cannot start:"), errors
    assert "--" not in errors[0]  # the page's words, not the command line's flags
    assert not any(s.value.startswith("Started") for s in at.success)
    assert "tr_job" not in at.session_state
    assert len(MANAGER.jobs()) == n_jobs
    return errors[0]


def page_with(dataset: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    at.selectbox(key="tr_dataset").set_value(dataset).run()
    no_exception(at)
    return at


@pytest.mark.slow
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
    [job] = jobs_named(name)
    assert job.id == at.session_state["tr_job"]
    assert job.path == trained / f"{name}.safetensors"

    # The same name again, while the first run trains or just after: refused, no second job.
    at.button(key="tr_start").click().run()
    no_exception(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Cannot start:") and repr(name) in errors[0]
    assert jobs_named(name) == [job]

    job.wait(180)
    assert job.state == "done", job.message
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
    assert keys(at.button) >= {f"tr_dismiss_{job.id}", f"tr_use_{job.id}"}  # finished: it can be dismissed
    assert f"tr_stop_{job.id}" not in keys(at.button)

    at.button(key=f"tr_use_{job.id}").click().run()  # back home, with the new model picked
    no_exception(at)
    assert at.session_state["model_choice"] == f"{name} (trained here)"
    assert at.subheader[0].value == f"Model card · {name}"
    card = {m.label: m.value for m in at.metric}
    assert card["Data set"] == "moons" and card["Epochs"] == "1"
    assert float(card["Test ELBO (nats)"]) == pytest.approx(ckpt.metrics["elbo"], abs=0.01)


@pytest.mark.slow
def test_an_ae_run_is_named_for_what_it_has(trained):
    """An AE's curves, previews and result name its reconstruction term, never KL, ELBO, β or a prior; the
    grey-Bernoulli caveat comes with the result."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    fill(at, name)
    at.radio(key="tr_kind").set_value("ae")
    at.button(key="tr_start").click().run()
    no_exception(at)
    [job] = jobs_named(name)
    job.wait(180)
    assert job.state == "done", job.message
    at.run()
    no_exception(at)
    [chart] = [c for c in at.get("plotly_chart") if c.key == f"tr_curves_{job.id}"]
    names = [t.get("name", "") for t in json.loads(chart.proto.spec)["data"]]
    assert names == ["loss = −log p(x|ẑ)", "test −log p(x|ẑ)"], names
    spec = json.dumps(json.loads(chart.proto.spec)["data"], ensure_ascii=False)
    assert "KL" not in spec and "ELBO" not in spec and "β" not in spec
    # Other runs of this process may be listed too: this one's result is the one with its number.
    expected = f"Test log p(x|ẑ) {job.metrics['recon']:.2f} nats/image (reconstruction)."
    assert any(s.value.startswith(expected) for s in at.success)
    captions = [i.caption for img in at.get("image") for i in img.proto.imgs]
    assert any("never trained to decode" in c for c in captions)
    assert any("Bernoulli likelihood on grey" in c.value for c in at.caption)


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


@pytest.mark.parametrize("hidden", ["abc", "12,,x", "0", ""])
def test_hidden_sizes_that_are_not_sizes_are_refused_in_words(trained, hidden):
    n_jobs = len(MANAGER.jobs())
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    fill(at, f"t-{uuid.uuid4().hex[:8]}", hidden=hidden)
    at.button(key="tr_start").click().run()
    assert "Hidden sizes must be positive whole numbers" in refused(at, n_jobs)
    assert not trained.exists()


@pytest.mark.parametrize(
    "dataset,present,absent",
    [
        ("moons", set(), {"tr_folder", "tr_data_dir", "tr_image_size", "tr_channels"}),
        ("digits", set(), {"tr_folder", "tr_data_dir", "tr_image_size", "tr_channels"}),
        ("image folder", {"tr_folder", "tr_image_size", "tr_channels"}, {"tr_data_dir"}),
        ("mnist", {"tr_data_dir"}, {"tr_folder", "tr_image_size", "tr_channels"}),
        ("fashion-mnist", {"tr_data_dir"}, {"tr_folder", "tr_image_size", "tr_channels"}),
    ],
)
def test_the_fields_shown_depend_on_the_data_set(dataset, present, absent):
    at = page_with(dataset)
    shown = keys(at.text_input) | keys(at.selectbox) | keys(at.radio)
    assert present <= shown and not (absent & shown)
    # The rest of the form is there whatever the data set.
    common = {"tr_kind", "tr_arch", "tr_hidden", "tr_likelihood", "tr_name", "tr_dataset"}
    assert common <= shown
    assert {"tr_epochs", "tr_batch", "tr_lr", "tr_seed", "tr_beta", "tr_sigma", "tr_mc_samples"} <= keys(
        at.number_input
    )
    assert {"tr_learn_sigma", "tr_binarize"} <= keys(at.checkbox) and keys(at.slider) == {"tr_latent"}
    assert at.text_input(key="tr_hidden").value == "512,256" and at.slider(key="tr_latent").value == 16


def test_a_missing_folder_is_refused_before_any_job(trained, tmp_path):
    n_jobs = len(MANAGER.jobs())
    at = page_with("image folder")
    fill(at, f"t-{uuid.uuid4().hex[:8]}")
    at.text_input(key="tr_folder").set_value(str(tmp_path / "no-such-folder"))
    at.button(key="tr_start").click().run()
    msg = refused(at, n_jobs)
    assert "does not exist" in msg and str(tmp_path / "no-such-folder") in msg
    assert not trained.exists()


def test_a_folder_without_images_is_refused_before_any_job(trained, tmp_path):
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "readme.txt").write_text("no pictures here")
    n_jobs = len(MANAGER.jobs())
    at = page_with("image folder")
    fill(at, f"t-{uuid.uuid4().hex[:8]}")
    at.button(key="tr_start").click().run()
    assert "give the image folder" in refused(at, n_jobs)  # an empty path first
    at.text_input(key="tr_folder").set_value(str(folder))
    at.button(key="tr_start").click().run()
    assert "holds no images" in refused(at, n_jobs)
    assert not trained.exists()


@pytest.mark.parametrize("dataset,shown", [("mnist", "MNIST"), ("fashion-mnist", "Fashion-MNIST")])
@pytest.mark.parametrize("given", [True, False])
def test_absent_mnist_files_are_marked_before_start(trained, tmp_path, dataset, shown, given):
    """$VAE_DATA_DIR points at a missing folder in the tests: MNIST is listed as such before it is chosen,
    and once chosen the page says what is missing and where, with Start disabled, before anything is pressed."""
    n_jobs = len(MANAGER.jobs())
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    assert f"{dataset} (files not found)" in at.selectbox(key="tr_dataset").options
    assert "moons" in at.selectbox(key="tr_dataset").options and not at.warning
    at.selectbox(key="tr_dataset").set_value(dataset).run()
    fill(at, f"t-{uuid.uuid4().hex[:8]}")
    if given:
        at.text_input(key="tr_data_dir").set_value(str(tmp_path))
    at.run()
    no_exception(at)
    [warning] = [w.value for w in at.warning]
    assert warning.startswith(f"{shown} files not found in ") and "train-images-idx3-ubyte" in warning
    assert (str(tmp_path) in warning) if given else ("default data folder" in warning)
    assert "--" not in warning and "Start is disabled" in warning
    assert at.button(key="tr_start").disabled
    assert not at.error and len(MANAGER.jobs()) == n_jobs and "tr_job" not in at.session_state
    assert not trained.exists()


def test_mnist_files_in_the_typed_folder_enable_start(tmp_path):
    from vae.data import MNIST_FILES

    at = page_with("mnist")
    assert at.button(key="tr_start").disabled
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in MNIST_FILES:
        (raw / f).write_bytes(b"")
    at.text_input(key="tr_data_dir").set_value(str(tmp_path)).run()
    no_exception(at)
    assert not at.warning and not at.button(key="tr_start").disabled
    assert at.selectbox(key="tr_dataset").value == "mnist"  # the choice survives the typed folder


@pytest.mark.slow
@pytest.mark.slow
def test_enter_in_a_field_starts_no_run(trained):
    """Enter in a form's field submits it in the browser unless the form says otherwise: the page's forms
    say so, and values committed (as Enter commits them) start nothing; the button alone starts the run,
    with those values."""
    n_jobs = len(MANAGER.jobs())
    name = f"t-{uuid.uuid4().hex[:8]}"
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    forms = at.get("form")
    assert forms and not [f.key for f in forms if f.proto.form.enter_to_submit], "a form that Enter submits"
    at.number_input(key="tr_epochs").set_value(2).run()
    at.text_input(key="tr_name").set_value(name).run()
    at.text_input(key="tr_hidden").set_value("32").run()
    no_exception(at)
    assert not jobs_named(name) and len(MANAGER.jobs()) == n_jobs and "tr_job" not in at.session_state
    assert not any(s.value.startswith("Started") for s in at.success)
    at.number_input(key="tr_epochs").set_value(2)
    at.text_input(key="tr_name").set_value(name)
    at.text_input(key="tr_hidden").set_value("32")
    at.button(key="tr_start").click().run()
    no_exception(at)
    [job] = jobs_named(name)
    try:
        assert job.train_config.epochs == 2 and job.model_config.hidden == (32,)
    finally:
        job.cancel()
        job.wait(180)


def test_the_page_starts_with_the_shared_header():
    """ui.common.page_header, as on every page (Train needs no model: no picker)."""
    assert "page_header(" in Path(PAGE).read_text().split("st.container()")[0]
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Train"] and at.caption[0].value.startswith("Train a VAE or an AE")


def test_a_failed_run_shows_no_empty_chart_and_can_be_dismissed(trained, tmp_path):
    """Two files that look like images but are not: the settings pass, the run fails loading them."""
    folder = tmp_path / "broken"
    folder.mkdir()
    for stem in ("a", "b"):
        (folder / f"{stem}.png").write_bytes(b"not a png")
    name = f"t-{uuid.uuid4().hex[:8]}"
    at = page_with("image folder")
    fill(at, name)
    at.text_input(key="tr_folder").set_value(str(folder))
    at.button(key="tr_start").click().run()
    no_exception(at)
    [job] = jobs_named(name)
    job.wait(120)
    assert job.state == "error" and "usable image" in job.message
    at.run()
    no_exception(at)
    assert any(e.value == job.message for e in at.error)
    assert f"tr_stop_{job.id}" not in keys(at.button) and f"tr_use_{job.id}" not in keys(at.button)
    assert f"tr_curves_{job.id}" not in keys(at.get("plotly_chart"))  # failed before its first step: no chart
    at.button(key=f"tr_dismiss_{job.id}").click().run()
    no_exception(at)
    assert jobs_named(name) == []
    assert f"tr_dismiss_{job.id}" not in keys(at.button)
    assert not (trained / f"{name}.safetensors").exists() and not (trained / f"{name}.safetensors.lock").exists()


@pytest.mark.slow
def test_a_running_job_is_shown_above_the_folded_form(trained):
    name = f"t-{uuid.uuid4().hex[:8]}"
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    fill(at, name)
    at.number_input(key="tr_epochs").set_value(500)
    at.button(key="tr_start").click().run()
    [job] = jobs_named(name)
    try:
        fresh = AppTest.from_file(PAGE, default_timeout=180)  # a reload: a new session
        fresh.run()
        no_exception(fresh)
        [form_box] = [e for e in fresh.main.expander if e.label == "New training run"]
        assert not form_box.proto.expanded
        top = [b for b in fresh.main.children.values() if isinstance(b, Block)]  # in page order
        runs = next(i for i, b in enumerate(top) if any(s.value.startswith("Training runs") for s in b.subheader))
        form = next(i for i, b in enumerate(top) if b is form_box)
        assert runs < form
        assert any(m.value.startswith(f"**{name}**") for m in top[runs].markdown)
        if job.active:  # a running job offers Stop, not Dismiss
            assert f"tr_dismiss_{job.id}" not in keys(fresh.button)
    finally:
        job.cancel()
        job.wait(180)
    assert job.done
