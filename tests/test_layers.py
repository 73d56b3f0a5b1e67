"""The package layout the README promises: the engine (vae/) imports no UI library and starts no
thread; services/ holds no UI code; pages and functions stay short enough to read in one go."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UI_LIBRARIES = {"streamlit", "plotly", "streamlit_drawable_canvas"}


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).glob("*.py"))


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("folder", ["vae", "services"])
def test_engine_and_services_import_no_ui_library(folder):
    offenders = {p.name: _imported(p) & UI_LIBRARIES for p in _modules(folder)}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_engine_knows_nothing_of_the_app_and_starts_no_thread():
    for p in _modules("vae"):
        imported = _imported(p)
        assert not imported & {"services", "ui", "pages"}, p.name
        text = p.read_text()
        assert "Thread(" not in text and "ThreadPoolExecutor" not in text, p.name


def test_services_do_not_reach_into_the_ui():
    for p in _modules("services"):
        assert not _imported(p) & {"ui", "pages"}, p.name


def _long_functions(path: Path, limit: int) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return out


def _package(folder: str) -> list[Path]:
    """Every module of a package, sub-packages included (vae/datasets, services/projections...)."""
    return sorted((ROOT / folder).rglob("*.py"))


def _pages() -> list[Path]:
    return [*_modules("pages"), *(p for p in (ROOT / "app.py", ROOT / "home.py") if p.exists())]


def test_no_engine_service_or_ui_function_is_over_80_lines():
    files = [*_package("vae"), *_package("services"), *_package("ui")]
    assert not [f for p in files for f in _long_functions(p, 80)]


def test_pages_only_lay_out_widgets():
    """A page is at most 120 lines and defines no function over 15 lines: the work lives in ui/ and services/."""
    long = {p.name: n for p in _pages() if (n := len(p.read_text().splitlines())) > 120}
    assert not long
    assert not [f for p in _pages() for f in _long_functions(p, 15)]


def test_services_hold_no_widget_key():
    """Widget keys belong to ui/ and pages/: a service that named one would tie numbers to a layout."""
    called = []
    for p in _package("services"):
        for node in ast.walk(ast.parse(p.read_text())):
            named = [k.value for k in getattr(node, "keywords", []) if k.arg == "key"]  # not sorted(key=fn)
            if isinstance(node, ast.Call) and any(isinstance(v, (ast.Constant, ast.JoinedStr)) for v in named):
                called.append(f"{p.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Subscript) and getattr(node.value, "attr", "") == "session_state":
                called.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert not called


def test_every_page_starts_with_the_shared_header():
    for p in _modules("pages"):
        assert "page_header(" in p.read_text(), p.name


def test_no_js_file_is_over_250_lines():
    js = [*(ROOT / "ui" / "components").glob("*.js"), *(ROOT / "static" / "live").glob("*.mjs")]
    assert js and not {p.name: n for p in js if (n := len(p.read_text().splitlines())) > 250}
