"""The Home page: pick a model, read its card, sample from the prior (app.py lists it first, as "Home")."""

import streamlit as st

from services.registry import choose_entry, list_checkpoints
from ui.model_card import model_card
from ui.texts import HOME_INTRO
from vae.meta import CheckpointError, read_metadata

# The title, the page list and the model card come first, from the checkpoint's metadata alone:
# they show while torch (about 3 s) is still importing for the samples below.
st.set_page_config(page_title="VAE Explorer", page_icon="🌗", layout="wide")
st.title("VAE Explorer")
st.caption("Train or load a Variational AutoEncoder, then see what it learned.")
st.markdown(HOME_INTRO)


def card_from_metadata(card) -> str | None:
    """The picked (or default) checkpoint's card, drawn from its metadata; the name shown, or None."""
    entry = choose_entry(list_checkpoints(), st.session_state.get("model_choice"))
    try:
        meta = read_metadata(entry.path) if entry is not None else None
    except CheckpointError:
        meta = None
    if meta is None:
        return None
    with card.container():
        model_card(entry.name, *(meta.get(k) or {} for k in ("config", "dataset", "history", "metrics")))
    return entry.name


card = st.empty()
shown = card_from_metadata(card)

from ui.common import explain, pick_model  # noqa: E402  (torch: after the card on purpose)
from ui.model_card import download_decoder, prior_samples  # noqa: E402
from ui.texts import home_text  # noqa: E402
from vae.evaluate import ACTIVE_UNIT_NATS  # noqa: E402

active = pick_model()
if active is not None and active.name != shown:  # an uploaded checkpoint, or the file changed
    ckpt = active.ckpt
    with card.container():
        model_card(active.name, ckpt.config.to_dict(), ckpt.dataset, ckpt.history, ckpt.metrics)
if active is None:
    card.empty()
else:
    download_decoder(active.name, active.model)
    prior_samples(active.model)

explain(home_text(ACTIVE_UNIT_NATS))
