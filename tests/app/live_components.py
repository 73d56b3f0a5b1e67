"""AppTest helpers for the live views (Streamlit v2 components): what a view was mounted with, and
what the browser would send back.

AppTest has no API for v2 components yet: a view is an element of type "bidi_component", and the
browser's messages are widget states, which ``send`` builds as the frontend does (a state is the
JSON of all the view's state values; triggers go through one aggregator widget per view).
"""

from __future__ import annotations

import json
from typing import Any

from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.proto.WidgetStates_pb2 import WidgetStates


def views(at) -> dict[str, Any]:
    """Key -> element of every live view on the page."""
    return {e.key: e for e in at.get("bidi_component")}


def view_data(at, key: str) -> dict:
    """The ``data`` the view ``key`` was mounted with."""
    return json.loads(views(at)[key].proto.json)


def send(at, key: str, state: dict | None = None, trigger: tuple[str, Any] | None = None):
    """Rerun as if the view ``key`` had called setStateValue (all of ``state``) or setTriggerValue."""
    element = views(at)[key]
    states: WidgetStates = at._tree.get_widget_states()
    if state is not None:
        w = states.widgets.add()
        w.id = element.proto.id
        w.json_value = json.dumps(state)
    if trigger is not None:
        w = states.widgets.add()
        w.id = _make_trigger_id(element.proto.id, "events")
        w.json_trigger_value = json.dumps([{"event": trigger[0], "value": trigger[1]}])
    return at._run(states)
