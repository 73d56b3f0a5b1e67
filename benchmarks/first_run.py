"""How long the Interpolate and Compare pages take on their first run, against a 3 s target.

Each case runs in a child process of its own (so Streamlit's st.cache_* start empty), under AppTest:

- **cold**: an empty disk cache ($VAE_CACHE_DIR a fresh folder): the moons are drawn, the training codes
  encoded, the moons fitted and the measures computed from nothing.
- **disk warm**: a second process on the same folder, as after a server restart: what does not change
  between sessions (drawn moons, codes per checkpoint file, moon fits, Compare's measures) is read back.

The timed figure is the page's first ``AppTest.run()``; the imports a server pays once per process
(torch, plotly, the app's modules) are timed apart. Prints PASS / MISS against the target; it is a
benchmark, never a timed test.

    .venv/bin/python benchmarks/first_run.py
    .venv/bin/python benchmarks/first_run.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 3.0
# (label, page, the session's model, Compare's chosen models or None for the default)
CASES = [
    ("Interpolate · moons-vae", "pages/3_Interpolate.py", "moons-vae", None),
    ("Interpolate · mnist-vae-conv", "pages/3_Interpolate.py", "mnist-vae-conv", None),
    ("Compare · the moons β sweep", "pages/6_Compare.py", "moons-vae", None),
    ("Compare · two MNIST models", "pages/6_Compare.py", "mnist-vae-conv", ["mnist-vae-conv", "mnist-vae-2d"]),
]

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
import torch, plotly, streamlit  # noqa: F401
from streamlit.testing.v1 import AppTest
import ui.common, ui.interpolate, ui.compare, services.explore, services.compare  # noqa: F401
imports = time.perf_counter() - t0
at = AppTest.from_file({page!r}, default_timeout=600)
at.session_state["model_choice"] = {model!r}
t1 = time.perf_counter()
at.run()
first = time.perf_counter() - t1
errors = [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]
if {models!r} is not None and not errors:  # pick the models as a user would: the time of that rerun counts
    (ms,) = [m for m in at.multiselect if m.key and m.key.startswith("cmp_models")]
    t1 = time.perf_counter()
    ms.set_value({models!r}).run()
    first += time.perf_counter() - t1
    errors = [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]
print(json.dumps({{"imports": imports, "first": first, "errors": errors}}))
"""


def child(page: str, model: str, models: list[str] | None, cache: Path) -> dict:
    """One cold process: the imports' time and the page's first run, on the disk cache ``cache``."""
    env = {**os.environ, "VAE_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT), "VAE_LIVE_DECODE": "1"}
    code = CHILD.format(root=str(ROOT), page=str(ROOT / page), model=model, models=models)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{page} on {model} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=1, help="cold + warm pairs per case (medians are printed)")
    ap.add_argument("--only", default="", help="run only the cases whose label contains this")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"first runs under AppTest, target {TARGET_S:.0f} s; {os.cpu_count()} CPU cores, load average {load:.1f}")
    for label, page, model, models in CASES:
        if args.only and args.only not in label:
            continue
        cold, warm, imports = [], [], []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="vae-first-run-") as d:
                a = child(page, model, models, Path(d))
                b = child(page, model, models, Path(d))
            for r in (a, b):
                if r["errors"]:
                    raise SystemExit(f"{label}: {r['errors']}")
            cold.append(a["first"])
            warm.append(b["first"])
            imports.append(b["imports"])
        c, w = statistics.median(cold), statistics.median(warm)
        verdict = "PASS" if w <= TARGET_S else "MISS"
        print(
            f"{label:32s} cold {c:6.2f} s · disk warm {w:6.2f} s  [{verdict}]"
            f"  (imports once per process {statistics.median(imports):.1f} s)"
        )


if __name__ == "__main__":
    main()
