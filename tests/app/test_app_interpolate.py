"""The Interpolate page under Streamlit's AppTest: the moon example, steps, slerp, random and non-moon endpoints,
the live scrubber's data and a released t, and the server-side scrubber where the browser cannot decode."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from live_components import send, view_data, views
from streamlit.testing.v1 import AppTest
from vae_helpers import no_exception, page_on_model, run_page

from vae.checkpoint import load_checkpoint
from vae.data import PHASE_NAMES

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "3_Interpolate.py")
ROWS = ["VAE · moons-vae", "AE · moons-ae", "pixel cross-fade"]
NAMES = [*PHASE_NAMES, "crescent", "half moon", "gibbous"]
PHASE = re.compile(rf"^({'|'.join(NAMES)}) (\d+)% lit \(fit (\d+\.\d{{3}})(: no moon fits)?\)$")
ENDPOINT = re.compile(rf"^({'|'.join(PHASE_NAMES)}) #(\d+)$")

pytestmark = pytest.mark.skipif(
    not all((ROOT / "checkpoints" / f"{n}.safetensors").exists() for n in ("moons-vae", "moons-ae")),
    reason="the moons checkpoints are not committed",
)


def scoped(at: AppTest, kind: str, name: str):
    """The one widget of ``kind`` (say "selectbox") whose key is ``name`` scoped to a model (ui.state.scoped)."""
    (w,) = [w for w in getattr(at, kind) if (w.key or "").split("@")[0] == name]
    return w


def rows(at: AppTest) -> list[str]:
    """The titles of the image rows, in order."""
    heads = [m.value for m in at.markdown if m.value.startswith("**") and m.value.endswith("**")]
    return [h.strip("*") for h in heads if h not in ("**Start (A)**", "**End (B)**", "**Scrub the path**")]


def pictures(at: AppTest) -> list[tuple[str, str]]:
    """(caption, url) of every image: A, B, then one strip per row. The URL changes with the image."""
    return [(i.caption, i.url) for img in at.get("image") for i in img.proto.imgs]


def phase_captions(at: AppTest) -> list[list[re.Match]]:
    """Per row, the estimated phase of each frame."""
    out = []
    for c in at.caption:
        parts = c.value.split(" · ")
        matches = [PHASE.match(p) for p in parts]
        if all(matches):
            out.append(matches)
    return out


def chart_lengths(at: AppTest) -> dict[str, int]:
    """Trace name -> number of points on the 'how far from the data' chart."""
    chart = at.get("plotly_chart")[0]  # the first chart; on moons the latent plane follows
    out = {}
    for trace in json.loads(chart.proto.spec)["data"]:
        y = trace["y"]
        if isinstance(y, dict):  # plotly's binary encoding of arrays
            y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"]))
        out[trace["name"]] = len(y)
    return out


@pytest.fixture
def app() -> AppTest:
    return run_page(PAGE)


def test_default_is_the_full_moon_to_first_quarter_example(app):
    assert not app.error
    pics = pictures(app)
    assert len(pics) == 2 + len(ROWS)
    a, b = ENDPOINT.match(pics[0][0]), ENDPOINT.match(pics[1][0])
    assert a and a.group(1) == "full moon"
    assert b and b.group(1) == "first quarter"
    assert scoped(app, "selectbox", "ip_a_label").value == PHASE_NAMES.index("full moon")
    assert scoped(app, "selectbox", "ip_b_label").value == PHASE_NAMES.index("first quarter")
    assert rows(app) == ROWS  # the VAE's row, its AE partner's, then the cross-fade
    assert len({url for _, url in pics}) == len(pics)  # five different images

    phases = phase_captions(app)
    assert len(phases) == len(ROWS)
    steps = app.slider(key="ip_steps").value
    assert steps == 9
    for row in phases:
        assert len(row) == steps
        assert int(row[0].group(2)) >= 90 and 40 <= int(row[-1].group(2)) <= 65  # full to half
        assert all(0 <= int(m.group(2)) <= 100 and float(m.group(3)) >= 0 for m in row)
    # The cross-fade starts and ends on real test moons, which fit a moon; its midpoint, a blend, does not.
    assert phases[2][0].group(4) is None and phases[2][-1].group(4) is None
    assert phases[2][steps // 2].group(4) == ": no moon fits"

    assert chart_lengths(app) == {title: steps for title in ROWS}
    assert [d.proto.label for d in app.get("download_button")] == ["Download PNG strip", "Download GIF"]
    assert app.radio(key="ip_method").value == "linear"


def test_steps_change_the_number_of_frames(app):
    before = pictures(app)
    app.slider(key="ip_steps").set_value(4).run()
    no_exception(app)
    after = pictures(app)
    assert after[:2] == before[:2]  # the same endpoints
    assert all(x[1] != y[1] for x, y in zip(after[2:], before[2:]))  # every strip is new
    assert [len(row) for row in phase_captions(app)] == [4, 4, 4]
    assert chart_lengths(app) == {title: 4 for title in ROWS}
    app.slider(key="ip_steps").set_value(15).run()
    assert [len(row) for row in phase_captions(app)] == [15, 15, 15]


def test_slerp_changes_the_latent_paths_only(app):
    before = pictures(app)
    app.radio(key="ip_method").set_value("slerp").run()
    no_exception(app)
    assert not app.error
    after = pictures(app)
    assert after[:2] == before[:2]
    assert after[2][1] != before[2][1] and after[3][1] != before[3][1]  # the VAE's and the AE's paths
    assert after[4] == before[4]  # the pixel cross-fade does not live in latent space
    phases = phase_captions(app)
    assert all(int(row[0].group(2)) >= 90 and 40 <= int(row[-1].group(2)) <= 65 for row in phases)


def test_random_endpoint(app):
    before = pictures(app)
    scoped(app, "radio", "ip_a_src").set_value("random").run()
    no_exception(app)
    assert not app.error
    first = pictures(app)
    m = ENDPOINT.match(first[0][0])
    assert m and 0 <= int(m.group(2)) < 1000
    assert first[1] == before[1]  # B stays
    assert rows(app) == ROWS
    assert len(phase_captions(app)) == len(ROWS)
    scoped(app, "button", "ip_a_reroll").click().run()
    no_exception(app)
    second = pictures(app)
    assert second[0] != first[0] and ENDPOINT.match(second[0][0])
    assert second[1] == before[1]

    scoped(app, "radio", "ip_b_src").set_value("random").run()
    no_exception(app)
    both = pictures(app)
    assert both[0] == second[0] and both[1] != before[1] and ENDPOINT.match(both[1][0])


def test_the_moon_argument_in_the_latent_plane(app):
    charts = at_charts(app)
    assert len(charts) == 2
    plane = charts[1]
    titles = [a["text"] for a in plane["layout"]["annotations"]]
    assert titles == ["VAE · moons-vae", "AE · moons-ae"]
    names = {t.get("name") for t in plane["data"]}
    assert {"±1σ of A and B", "±2σ of A and B", "±1σ of q(z|x), codes near the path", "path"} <= names
    paths = [t for t in plane["data"] if t.get("name") == "path"]
    assert [p["text"] for p in paths] == [["A", *[""] * 7, "B"]] * 2  # only the ends are written on the plot
    assert [h.split(":")[0] for h in paths[0]["hovertext"]] == [f"step {s}" for s in ["A", *map(str, range(1, 8)), "B"]]
    verdicts = [m.value for m in app.markdown if m.value.startswith(("**VAE · moons-vae**:", "**AE · moons-ae**:"))]
    assert verdicts[0].startswith("**VAE · moons-vae**: 7 of 7 in-between frames fit a moon")
    assert re.search(
        r"the lit fraction goes 9\d% → [45]\d% lit, one way; of the in-between frames \d read as waxing", verdicts[0]
    )
    assert verdicts[1].startswith("**AE · moons-ae**: its midpoint fits no moon")
    table = app.dataframe[0].value
    assert list(table["step"]) == ["A", *map(str, range(1, 8)), "B"]
    covers = table["VAE: covered by"]
    assert all(re.match(r"^\d+; \d+% (full moon|waxing gibbous|first quarter)$", c) for c in covers)
    assert all(re.match(r"^\d+\.\d× the usual spacing$", c) for c in table["AE: nearest code"])
    app.slider(key="ip_steps").set_value(5).run()
    assert list(app.dataframe[0].value["step"]) == ["A", "1", "2", "3", "B"]


def test_the_prior_density_is_charted_for_the_vae_only(app):
    scoped(app, "selectbox", "ip_metric").set_value("log N(z; 0, I)").run()
    no_exception(app)
    assert chart_lengths(app) == {"VAE · moons-vae": 9}  # an AE has no prior; a cross-fade no code
    scoped(app, "selectbox", "ip_metric").set_value("distance to nearest training code").run()
    assert chart_lengths(app) == {"VAE · moons-vae": 9, "AE · moons-ae": 9}


def at_charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_a_model_without_a_partner_and_without_moons():
    at = page_on_model(PAGE, "digits-vae")
    assert not at.error
    assert rows(at) == ["VAE · digits-vae", "pixel cross-fade"]
    assert any(c.value.startswith("No checkpoint of the other kind") for c in at.caption)
    assert phase_captions(at) == []  # phases are for moons only
    assert len(at_charts(at)) == 1 and not [d for d in at.dataframe]  # and so is the moon argument
    pics = pictures(at)
    assert len(pics) == 4
    assert re.fullmatch(r"\d #\d+", pics[0][0]) and re.fullmatch(r"\d #\d+", pics[1][0])
    assert pics[0][0][0] != pics[1][0][0]  # two different digits
    assert chart_lengths(at) == {"VAE · digits-vae": 9, "pixel cross-fade": 9}
    scrub = view_data(at, "ip_scrub")
    assert [m["title"] for m in scrub["models"]] == ["VAE · digits-vae"] and len(scrub["models"][0]["za"]) == 8


# --------------------------------------------------------------------------- the scrubber


def released(at: AppTest) -> list[str]:
    """The caption measuring the frame at the chosen t (none before a release)."""
    return [c.value for c in at.caption if c.value.startswith("At t = ")]


def endpoint_codes(at: AppTest, name: str) -> torch.Tensor:
    """The posterior means (2, D) of the page's A and B under the checkpoint ``name``."""
    from ui.common import load_data  # the page's cached data set

    data, _ = load_data("moons", None, 28, 1)
    idx = [int(ENDPOINT.match(cap).group(2)) for cap, _ in pictures(at)[:2]]
    model = load_checkpoint(ROOT / "checkpoints" / f"{name}.safetensors").model.eval()
    with torch.no_grad():
        return model.encode(data.test_x[idx]).mean


def test_the_scrubber_gets_each_models_path(app):
    d = view_data(app, "ip_scrub")
    assert d["method"] == "linear"
    assert [m["title"] for m in d["models"]] == ROWS[:2]  # the VAE and its AE partner, side by side
    for m, name in zip(d["models"], ("moons-vae", "moons-ae")):
        ends = endpoint_codes(app, name)
        assert np.allclose(m["za"], ends[0], atol=1e-5) and np.allclose(m["zb"], ends[1], atol=1e-5)
        dec = m["decoder"]
        assert dec["shape"] == [1, 28, 28] and dec["dim"] == 16
        assert (ROOT / "static" / dec["model_url"].removeprefix("/app/static/")).is_file()
    assert d["models"][0]["decoder"]["model_url"] != d["models"][1]["decoder"]["model_url"]
    assert released(app) == []  # nothing measured before a release


def test_a_released_t_is_measured_and_belongs_to_its_path(app):
    d = view_data(app, "ip_scrub")
    send(app, "ip_scrub", state={"t": {"t": 0.0, "path": d["path"]}})
    no_exception(app)
    (text,) = released(app)
    assert re.match(r"At t = 0\.000: VAE · moons-vae: (full moon|gibbous) (9\d|100)% lit \(fit 0\.\d{3}\), d=", text)
    assert re.search(r"AE · moons-ae: (full moon|gibbous) (9\d|100)% lit", text)
    assert view_data(app, "ip_scrub") == d  # a release does not re-mount the view
    send(app, "ip_scrub", state={"t": {"t": 1.0, "path": d["path"]}})
    (text,) = released(app)
    assert re.match(r"At t = 1\.000: VAE · moons-vae: (first quarter|half moon) [4-6]\d% lit", text)

    app.radio(key="ip_method").set_value("slerp").run()
    no_exception(app)
    slerp = view_data(app, "ip_scrub")
    assert slerp["method"] == "slerp" and slerp["path"] != d["path"]
    assert [m["za"] for m in slerp["models"]] == [m["za"] for m in d["models"]]  # the same ends
    assert released(app) == []  # the t chosen on the linear path says nothing of this one


def test_without_the_runtime_the_server_decodes_t(no_runtime):
    at = run_page(PAGE)
    assert not at.error and views(at) == {}
    assert any(c.value.startswith("Live decoding is off here: the in-browser runtime is missing") for c in at.caption)
    assert rows(at) == ROWS  # the rows stay
    pics = pictures(at)
    assert [cap for cap, _ in pics[2:4]] == ["VAE · moons-vae · t = 0.50", "AE · moons-ae · t = 0.50"]
    assert len(pics) == 4 + len(ROWS)
    (text,) = released(at)
    assert text.startswith("At t = 0.500: VAE · moons-vae: ")
    at.slider(key="ip_t").set_value(0.0).run()
    no_exception(at)
    assert re.match(r"At t = 0\.000: VAE · moons-vae: (full moon|gibbous) (9\d|100)% lit", released(at)[0])
    assert pictures(at)[2][1] != pics[2][1]


# --------------------------------------------------------------------------- state after a model switch


ENDS = ("ip_a_src", "ip_a_label", "ip_b_src", "ip_b_label", "ip_metric")


def shown(at: AppTest) -> dict[str, object]:
    """What the end pickers and the chart's measure show, by widget name; and the ends' captions."""
    kinds = {"ip_a_src": "radio", "ip_b_src": "radio", "ip_metric": "selectbox"}
    out: dict[str, object] = {}
    for n in ENDS:
        found = [w.value for w in getattr(at, kinds.get(n, "selectbox")) if (w.key or "").split("@")[0] == n]
        out[n] = found[0] if found else None  # a picker the page does not show
    out["captions"] = [cap for cap, _ in pictures(at)[:2]]
    return out


def test_a_model_switch_shows_the_new_models_own_ends():
    fresh = page_on_model(PAGE, "mnist-vae-conv")  # what a session on that model shows
    at = run_page(PAGE)  # moons-vae, the default: A is a full moon
    scoped(at, "radio", "ip_b_src").set_value("random").run()
    scoped(at, "selectbox", "ip_metric").set_value("log N(z; 0, I)").run()
    at.selectbox(key="model_picker").set_value("mnist-vae-conv").run()
    no_exception(at)
    assert not at.error
    assert shown(at) == shown(fresh)  # no moon's label, source or measure carried over to MNIST
    label = scoped(at, "selectbox", "ip_a_label")
    assert label.options == [str(i) for i in range(10)] and label.value == int(label.value)


def test_both_ends_are_measured_alike_where_the_reference_is_the_test_set():
    from ui.common import load_data

    at = page_on_model(PAGE, "mnist-vae-conv")  # no training digits here: the reference is the test set
    data, _ = load_data("mnist", None, 28, 1)
    b_label = scoped(at, "selectbox", "ip_b_label").value
    (idx,) = [n for n in at.number_input if (n.key or "").split("@")[0] == "ip_b_idx"]
    idx.set_value(idx.max).run()  # B: the last test digit of its label, past the first 5,000
    no_exception(at)
    ia, ib = (int(cap.split("#")[1]) for cap, _ in pictures(at)[:2])
    assert ib > 5000 and int(data.test_y[ib]) == b_label
    (chart,) = [c for c in at_charts(at)]
    (fade,) = [t for t in chart["data"] if t["name"] == "pixel cross-fade"]
    y = fade["y"]
    if isinstance(y, dict):
        y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"]))
    flat = data.test_x[:5000].reshape(5000, -1)
    ends = data.test_x[[ia, ib]].reshape(2, -1)
    others = flat[~(flat[:, None] == ends[None]).all(-1).any(1)]  # the reference, less A and B
    for end, d in ((ia, y[0]), (ib, y[-1])):  # the cross-fade's ends are A and B themselves
        expect = float(torch.cdist(data.test_x[end].reshape(1, -1), others).min()) / 28
        assert d > 0 and d == pytest.approx(expect, rel=1e-4)  # to the nearest *other* test image, at both ends
