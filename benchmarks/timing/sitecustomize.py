"""Times each page's script run in a ``streamlit run`` server (benchmarks/load.py --browser puts this folder on
the server's PYTHONPATH): one JSON line per run of a page (st.Page.run) in $VAE_BENCH_RUNLOG, with the url
path, the wall and the thread's CPU seconds, and how the run ended (done, a rerun or stop). With
$VAE_BENCH_PROFILE set, each run's cProfile stats are written beside the log too."""

from __future__ import annotations

import json
import os
import threading
import time

LOG = os.environ.get("VAE_BENCH_RUNLOG")


def _install() -> None:
    import cProfile

    from streamlit.navigation.page import StreamlitPage

    original = StreamlitPage.run
    lock = threading.Lock()
    seq = [0]

    def run(self) -> None:
        prof = cProfile.Profile() if os.environ.get("VAE_BENCH_PROFILE") else None
        t0, c0, end = time.perf_counter(), time.thread_time(), "done"
        try:
            if prof is not None:
                prof.enable()
            return original(self)
        except BaseException as e:  # st.rerun / st.stop travel as exceptions: recorded, then re-raised
            end = type(e).__name__
            raise
        finally:
            if prof is not None:
                prof.disable()
            rec = {"page": "/" + (self.url_path or ""), "start": t0, "wall": time.perf_counter() - t0}
            rec.update(cpu=time.thread_time() - c0, end=end)
            with lock:
                seq[0] += 1
                if prof is not None:
                    rec["prof"] = f"{LOG}.{seq[0]}.prof"
                    prof.dump_stats(rec["prof"])
                with open(LOG, "a") as f:
                    f.write(json.dumps(rec) + "\n")

    StreamlitPage.run = run


if LOG:
    _install()
