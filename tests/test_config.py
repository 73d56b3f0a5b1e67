import json
import math

import pytest

from vae.config import ConfigError, ModelConfig, TrainConfig


def _id(d):
    return ",".join(f"{k}={v}" for k, v in d.items())


def test_defaults_are_valid():
    cfg = ModelConfig()
    assert cfg.kind == "vae" and cfg.image_shape == (1, 28, 28) and cfg.n_pixels == 784
    assert TrainConfig().epochs >= 1


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "gan"},
        {"arch": "transformer"},
        {"likelihood": "poisson"},
        {"latent_dim": 1},
        {"latent_dim": 129},
        {"latent_dim": 2.5},
        {"latent_dim": True},
        {"beta": math.nan},
        {"beta": math.inf},
        {"beta": -1.0},
        {"sigma": 0.0},
        {"mc_samples": 0},
        {"hidden": ()},
        {"hidden": (0,)},
        {"image_shape": (2, 28, 28)},
        {"image_shape": (1, 2, 2)},
        {"arch": "conv", "image_shape": (1, 30, 30)},
        {"arch": "conv", "image_shape": (1, 28, 32)},
        {"arch": "conv", "hidden": (8, 8, 8, 8, 8)},
        {"learn_sigma": "yes"},
    ],
    ids=_id,
)
def test_bad_model_values_raise_config_error(bad):
    with pytest.raises(ConfigError):
        ModelConfig(**bad)
    with pytest.raises(ConfigError):
        ModelConfig.from_dict({**ModelConfig().to_dict(), **bad})


@pytest.mark.parametrize("latent", [2, 128])
def test_latent_range_edges_are_accepted(latent):
    assert ModelConfig(latent_dim=latent).latent_dim == latent


def test_unknown_keys_raise_config_error():
    with pytest.raises(ConfigError, match="bogus"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "bogus": 1})
    with pytest.raises(ConfigError, match="bogus"):
        TrainConfig.from_dict({**TrainConfig().to_dict(), "bogus": 1})


@pytest.mark.parametrize("bad", [None, [1, 2], "vae"])
def test_non_object_raises_config_error(bad):
    with pytest.raises(ConfigError):
        ModelConfig.from_dict(bad)


def test_wrong_types_from_json_raise_config_error():
    with pytest.raises(ConfigError):
        ModelConfig.from_dict({"image_shape": None})
    with pytest.raises(ConfigError):
        ModelConfig.from_dict({"hidden": ["a"]})


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"epochs": 1.5},
        {"batch_size": 0},
        {"lr": 0.0},
        {"lr": math.nan},
        {"lr": 11.0},
        {"device": "tpu"},
        {"log_every": 0},
        {"eval_batch_size": 0},  # would crash test_metrics (range step 0) at the end of epoch 1
    ],
    ids=_id,
)
def test_bad_train_values_raise_config_error(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({**TrainConfig().to_dict(), **bad})


@pytest.mark.parametrize(
    "bad",
    [
        {"log_every": "x"},
        {"epochs": "3"},
        # JSON from a checkpoint's metadata: a non-string device must be a ConfigError too, so that
        # load_checkpoint can turn it into a CheckpointError (today: AttributeError on .startswith).
        {"device": 5},
        {"device": None},
    ],
    ids=_id,
)
def test_wrong_train_types_from_json_raise_config_error(bad):
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({**TrainConfig().to_dict(), **bad})


def test_model_config_round_trip_through_json():
    cfg = ModelConfig(
        kind="ae",
        arch="conv",
        image_shape=(3, 32, 32),
        hidden=(16, 32),
        latent_dim=7,
        beta=4.0,
        likelihood="gaussian",
        sigma=0.2,
        learn_sigma=True,
        mc_samples=3,
        binarize=True,
    )
    d = json.loads(json.dumps(cfg.to_dict()))
    back = ModelConfig.from_dict(d)
    assert back == cfg
    assert back.image_shape == (3, 32, 32) and back.hidden == (16, 32)  # tuples again, not lists


def test_train_config_round_trip_through_json():
    cfg = TrainConfig(
        dataset="digits", epochs=3, batch_size=32, lr=0.01, seed=7, device="cpu", data_dir="/x", extra={"a": 1}
    )
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_configs_are_frozen():
    cfg = ModelConfig()
    with pytest.raises(AttributeError):
        cfg.latent_dim = 3  # type: ignore[misc]
