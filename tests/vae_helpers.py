"""Helpers shared by the test modules (fixtures live in conftest.py).

Imported as ``vae_helpers``, not from ``conftest``: tests/e2e has a conftest.py of its own.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from vae.data import Dataset

ROOT = Path(__file__).resolve().parents[1]


def run_python(*args: object, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python ARGS`` in the repository, one thread, no standard input; output captured as text."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def make_dataset(x: torch.Tensor, n_test: int = 4, name: str = "toy") -> Dataset:
    """A Dataset whose first len(x) - n_test images are the training split."""
    y = torch.zeros(len(x), dtype=torch.int64)
    n = len(x) - n_test
    return Dataset(name, x[:n], y[:n], x[n:], y[n:], ["only"])


def state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def moon_png() -> bytes:
    """A white moon-like disk on black (what the default moons-vae model expects), as PNG bytes."""
    img = Image.new("L", (96, 96), 0)
    ImageDraw.Draw(img).ellipse((22, 22, 74, 74), fill=230)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def drawn_three(stroke: int = 18, size: int = 224) -> bytes:
    """A digit 3 drawn as on the Reconstruct page's canvas (white strokes of ``stroke`` px on a black
    size x size canvas), as PNG bytes: not a moon, and not an MNIST digit either."""
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    draw.arc((60, 30, 160, 115), 200, 90, fill=255, width=stroke)
    draw.arc((60, 105, 165, 200), 270, 160, fill=255, width=stroke)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def no_exception(at) -> None:
    """No exception reached the page (AppTest)."""
    assert not at.exception, [e.value for e in at.exception]


def open_app(page: str, timeout: int = 180, **state):
    """Run a page (an absolute path) once in AppTest with ``state`` in its session; no exception reached it."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(page, default_timeout=timeout)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    no_exception(at)
    return at


def page_on_model(page: str, name: str):
    """Run a page (an absolute path) in AppTest on the committed model ``name``; skip if it is not committed."""
    import pytest
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(page, default_timeout=180)
    at.session_state["model_choice"] = name
    at.run()
    no_exception(at)
    if at.selectbox(key="model_picker").value != name:
        pytest.skip(f"the {name} checkpoint is not committed")
    return at


def run_page(page: str):
    """Run a page (an absolute path) once in AppTest and check it raised nothing."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(page, default_timeout=180)
    at.run()
    no_exception(at)
    return at


def _plotly_values(v: object) -> np.ndarray:
    """A plotly JSON array as floats: a plain list, or plotly's typed array ({"bdata", "dtype"})."""
    if isinstance(v, Mapping) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v.get("dtype", "f8"))).astype(np.float64)
    return np.asarray(v, dtype=np.float64)


def figure_points(spec: Mapping[str, Any] | str) -> dict[str, int]:
    """Count the points of each trace name in a plotly figure's JSON (e.g. ``plotly_chart.proto.spec``)."""
    fig = json.loads(spec) if isinstance(spec, str) else spec
    out: dict[str, int] = {}
    for tr in fig.get("data", []):
        name = str(tr.get("name", ""))
        out[name] = out.get(name, 0) + len(_plotly_values(tr.get("x", [])))
    return out


def figure_xy(spec: Mapping[str, Any] | str) -> np.ndarray:
    """All (x, y) positions of a plotly figure's JSON, trace after trace: (N, 2)."""
    fig = json.loads(spec) if isinstance(spec, str) else spec
    parts = [np.stack([_plotly_values(t["x"]), _plotly_values(t["y"])], 1) for t in fig.get("data", []) if "x" in t]
    return np.concatenate(parts) if parts else np.zeros((0, 2))


def start_endless(runner, key: str):
    """Submit a job that reports progress forever (until cancelled) and wait until it runs."""
    import threading

    started = threading.Event()

    def forever(progress):
        started.set()
        while True:
            progress(0.1, "working")

    job = runner.submit(key, forever)
    assert started.wait(10)
    return job
