"""ui.forms: widgets generated from the config schema, checked under Streamlit's AppTest."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def form_script() -> None:
    import streamlit as st

    from ui.forms import config_input
    from vae.config import ModelConfig, TrainConfig

    values = {
        "kind": config_input(ModelConfig, "kind", "f_kind"),
        "latent_dim": config_input(ModelConfig, "latent_dim", "f_latent"),
        "latent_slider": config_input(ModelConfig, "latent_dim", "f_latent_slider", default=16, slider=True),
        "sigma": config_input(ModelConfig, "sigma", "f_sigma"),
        "learn_sigma": config_input(ModelConfig, "learn_sigma", "f_learn_sigma"),
        "hidden": config_input(ModelConfig, "hidden", "f_hidden", label="Widths", default=(512, 256)),
        "lr": config_input(TrainConfig, "lr", "f_lr", format="%.5f"),
        "seed": config_input(TrainConfig, "seed", "f_seed", min_value=0, max_value=99),
        "batch": config_input(TrainConfig, "batch_size", "f_batch", options=[16, 128, 512]),
        "data_dir": config_input(TrainConfig, "data_dir", "f_data_dir"),
    }
    st.session_state["values"] = values


def test_widgets_follow_the_schema():
    at = AppTest.from_function(form_script, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    kind = at.radio(key="f_kind")
    assert kind.options == ["vae", "ae"] and kind.value == "vae" and kind.label == "Model"
    latent = at.number_input(key="f_latent")
    assert (latent.min, latent.max, latent.value, latent.label) == (2, 128, 20, "Latent size")
    slider = at.slider(key="f_latent_slider")
    assert (slider.min, slider.max, slider.value) == (2, 128, 16)
    sigma = at.number_input(key="f_sigma")
    assert (sigma.min, sigma.max, sigma.value) == (1e-4, 10.0, 0.1)
    assert at.checkbox(key="f_learn_sigma").value is False and at.checkbox(key="f_learn_sigma").label == "Learn σ"
    assert at.text_input(key="f_hidden").value == "512,256" and at.text_input(key="f_hidden").label == "Widths"
    lr = at.number_input(key="f_lr")
    assert lr.min is None and lr.max == 10.0 and lr.value == 1e-3  # an open lower bound: validation says why
    seed = at.number_input(key="f_seed")
    assert (seed.min, seed.max, seed.value) == (0, 99, 1)  # the page's bounds where the schema has none
    assert at.select_slider(key="f_batch").value == 128
    assert at.text_input(key="f_data_dir").value == "" and at.text_input(key="f_data_dir").label == "MNIST data folder"
    assert at.session_state["values"]["hidden"] == "512,256"


def test_help_comes_from_the_schema_unless_the_page_says_otherwise():
    at = AppTest.from_function(form_script, default_timeout=60)
    at.run()
    assert at.number_input(key="f_sigma").help == "Gaussian decoder's standard deviation"
    assert not at.number_input(key="f_latent").help


def choices_script() -> None:
    from dataclasses import dataclass

    import streamlit as st

    from ui.forms import config_input
    from vae.config import option

    @dataclass(frozen=True)
    class Demo:
        colour: str = option("red", choices=("red", "green", "blue", "grey"), label="Colour")
        size: float = option(2.0, min=1, max=4)

    st.session_state["got"] = (config_input(Demo, "colour", "d_colour"), config_input(Demo, "size", "d_size"))


def test_more_than_three_choices_make_a_selectbox_and_float_bounds_stay_floats():
    at = AppTest.from_function(choices_script, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    box = at.selectbox(key="d_colour")
    assert box.options == ["red", "green", "blue", "grey"] and box.value == "red"
    size = at.number_input(key="d_size")
    assert (size.min, size.max, size.value) == (1.0, 4.0, 2.0)
    at.number_input(key="d_size").set_value(3.5).run()
    assert at.session_state["got"] == ("red", 3.5)
