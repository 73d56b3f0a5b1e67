"""Widgets made from the config schema (``vae.config.option``): one call per option.

The widget follows the field: a radio (up to 3 choices) or a select box for choices, a checkbox
for a switch, a number input bounded by the schema's min and max (a slider or a select slider on
request), and a text input for a tuple of sizes (shown as "512,256") or a free string. Labels and
help come from the schema; the page may override them, the default and any widget argument.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from vae import config

_UNSET: Any = object()


def _default(cls: type, name: str, default: Any) -> Any:
    if default is not _UNSET:
        return default
    return next(f.default for f in cls.__dataclass_fields__.values() if f.name == name)


def _number(where: Any, tp: type, m: Any, text: str, value: Any, kw: dict[str, Any]) -> Any:
    """A bounded number input, or a slider (``slider=True``) or select slider (``options=[...]``)."""
    options = kw.pop("options", None)
    if options is not None:
        return where.select_slider(text, options, value=value, **kw)
    lo = kw.pop("min_value", None if m.get("min_open") else m.get("min"))
    hi = kw.pop("max_value", m.get("max"))
    # Streamlit wants bounds, value and step of one type: float fields get floats throughout.
    lo, hi, value = (None if v is None else tp(v) for v in (lo, hi, value))
    if kw.pop("slider", False):
        return where.slider(text, lo, hi, value, **kw)
    return where.number_input(text, min_value=lo, max_value=hi, value=value, **kw)


def config_input(
    cls: type, name: str, key: str, *, container: Any = None, label: str | None = None, default: Any = _UNSET, **kw
) -> Any:
    """A widget for field ``name`` of the config dataclass ``cls``, under widget key ``key``.

    Returns the widget's value: a tuple field's as text (parse it with ``vae.config.parse_ints``),
    an optional string's as text ('' for None). ``kw`` goes to the Streamlit widget.
    """
    where = container if container is not None else st
    m = config.meta(cls, name)
    tp, _ = config.field_type(cls, name)
    text = label or config.label(cls, name)
    value = _default(cls, name, default)
    kw.setdefault("help", m.get("help") or None)
    kw["key"] = key
    if "choices" in m:
        choices = list(m["choices"])
        index = choices.index(value)
        if len(choices) <= 3:
            return where.radio(text, choices, index=index, horizontal=True, **kw)
        return where.selectbox(text, choices, index=index, **kw)
    if tp is bool:
        return where.checkbox(text, value=bool(value), **kw)
    if tp is tuple:
        return where.text_input(text, ",".join(str(v) for v in value), **kw)
    if tp in (int, float):
        return _number(where, tp, m, text, value, kw)
    return where.text_input(text, "" if value is None else str(value), **kw)
