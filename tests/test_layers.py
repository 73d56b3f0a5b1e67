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


def test_no_function_is_over_100_lines():
    files = [*_modules("vae"), *_modules("services"), *_modules("ui"), *_modules("pages"), ROOT / "app.py"]
    assert not [f for p in files for f in _long_functions(p, 100)]


def test_no_page_is_over_200_lines():
    long = {p.name: n for p in [*_modules("pages"), ROOT / "app.py"] if (n := len(p.read_text().splitlines())) > 200}
    assert not long
