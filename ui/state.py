"""One rule for session state: a widget whose choices depend on the model or its data set is keyed by
that model, so that a model switch never shows a value the new model cannot have.

``scoped("ip_A_label", active)`` -> ``"ip_A_label@moons-vae:1733140000.0"``: the same widget on another
model is another widget, which starts from its own default (Streamlit drops the state of a widget that
a run did not draw, so a switch back starts from the default too).
Widgets that depend on nothing model-specific (a temperature, a GIF speed) keep plain keys.
"""

from __future__ import annotations

from typing import Any, Protocol


class HasKey(Protocol):
    key: str


def scoped(name: str, owner: HasKey | str, *more: Any) -> str:
    """The widget key ``name`` scoped to ``owner`` (an ``Active`` model, or any identity string) and
    to anything else its choices depend on (a data set name, a second model's key, L)."""
    ident = owner if isinstance(owner, str) else owner.key
    return "@".join([name, ident, *map(str, more)])


def dim_label(j: int) -> str:
    """The one numbering of latent dimensions, as in the math: z1 ... zD for j = 0 ... D-1."""
    return f"z{j + 1}"
