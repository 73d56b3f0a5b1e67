"""The server's settings in .streamlit/config.toml that the page-open benchmark depends on."""

from __future__ import annotations

from pathlib import Path

import tomllib

CONFIG = Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml"


def test_no_full_garbage_collection_after_every_script_run():
    """Streamlit's default gc.collect() after each run cost ~0.25 s of CPU per page open or widget change
    (benchmarks/load.py --browser): it is turned off, Python's generational collector still runs."""
    config = tomllib.loads(CONFIG.read_text())
    assert config["runner"]["postScriptGC"] is False
    assert config["server"]["enableStaticServing"] is True  # the live views' runtime and decoders
