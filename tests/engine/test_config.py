import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from vae.config import ConfigError, ModelConfig, TrainConfig, check_fields, field_type, label, meta, option, parse_ints

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = (ModelConfig, TrainConfig)


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
    _refused(ModelConfig, bad)


def _refused(cls, bad: dict) -> None:
    """Refused when built directly and when read back from a checkpoint's JSON."""
    with pytest.raises(ConfigError):
        cls(**bad)
    with pytest.raises(ConfigError):
        cls.from_dict({**cls().to_dict(), **bad})


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
    _refused(TrainConfig, bad)


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
        dataset="digits", epochs=3, batch_size=32, lr=0.01, seed=7, device="cpu", data_dir="/x", memory_budget_mb=5.5
    )
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_train_json_saved_with_the_old_extra_field_still_loads():
    """Checkpoints written while TrainConfig had `extra` carry "extra": {} in their train JSON."""
    d = {**TrainConfig(epochs=3).to_dict(), "extra": {}}
    assert "extra" not in TrainConfig().to_dict()
    assert TrainConfig.from_dict(d) == TrainConfig(epochs=3)
    with pytest.raises(TypeError):
        TrainConfig(extra={})  # type: ignore[call-arg]


@pytest.mark.parametrize("path", sorted((ROOT / "checkpoints").glob("*.safetensors")), ids=lambda p: p.stem)
def test_the_committed_checkpoints_load_with_their_train_config(path):
    from vae.checkpoint import load_checkpoint, read_metadata

    # Files saved before the field went carry "extra"; newer ones do not: both load.
    assert isinstance(read_metadata(path)["train"], dict)
    ckpt = load_checkpoint(path)
    assert ckpt.train is not None and ckpt.train.epochs >= 1


def test_configs_are_frozen():
    cfg = ModelConfig()
    with pytest.raises(AttributeError):
        cfg.latent_dim = 3  # type: ignore[misc]


# --------------------------------------------------------------------------- the schema in the field metadata


def schema_fields():
    return [(cls, f) for cls in CONFIGS for f in dataclasses.fields(cls)]


def test_every_default_fits_its_own_schema():
    for _, f in schema_fields():
        m = f.metadata
        if "choices" in m:
            assert f.default in m["choices"], f.name
        if "flag" in m:
            assert m["flag"].startswith("--"), f.name
    flags = [f.metadata["flag"] for _, f in schema_fields() if "flag" in f.metadata]
    assert len(flags) == len(set(flags))
    check_fields(ModelConfig())
    check_fields(TrainConfig())


@pytest.mark.parametrize(
    "cls,name", [(cls, f.name) for cls, f in schema_fields() if "choices" in f.metadata], ids=lambda v: str(v)
)
def test_a_value_outside_the_choices_is_refused_from_the_metadata(cls, name):
    choices = meta(cls, name)["choices"]
    with pytest.raises(ConfigError) as e:
        cls(**{name: "no-such-choice"})
    assert e.value.field == name
    assert str(e.value) == f"{name} must be one of {choices}, got 'no-such-choice'"
    assert e.value.detail == f"must be one of {choices}, got 'no-such-choice'"
    for choice in choices:
        if not (name == "arch" and choice == "conv"):  # conv also needs a conv image size: tested below
            assert getattr(cls(**{name: choice}), name) == choice


BOUNDED = [
    (cls, f.name)
    for cls, f in schema_fields()
    if ("min" in f.metadata or "max" in f.metadata) and field_type(cls, f.name)[0] in (int, float)
]


@pytest.mark.parametrize("cls,name", BOUNDED, ids=lambda v: str(v))
def test_bounds_come_from_the_metadata_edges_in_and_beyond_out(cls, name):
    m = meta(cls, name)
    tp, _ = field_type(cls, name)
    step = 1 if tp is int else 1e-3
    lo, hi = m.get("min"), m.get("max")
    if lo is not None:
        below = lo if m.get("min_open") else lo - step
        with pytest.raises(ConfigError, match=f"^{name} must be") as e:
            cls(**{name: tp(below)})
        assert e.value.field == name
        if not m.get("min_open"):
            assert getattr(cls(**{name: tp(lo)}), name) == lo
    if hi is not None:
        with pytest.raises(ConfigError, match=f"^{name} must be in"):
            cls(**{name: tp(hi + step)})
        assert getattr(cls(**{name: tp(hi)}), name) == hi


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"latent_dim": 1}, "latent_dim must be in 2..128, got 1"),
        ({"sigma": 20.0}, "sigma must be in 0.0001..10, got 20.0"),
        ({"beta": math.nan}, "beta must be a finite number, got nan"),
        ({"latent_dim": 2.5}, "latent_dim must be an integer, got 2.5"),
        ({"hidden": (8,) * 7}, "hidden needs 1 to 6 values, got 7"),
        ({"hidden": (8, 5000)}, "hidden values must be in 1..4096, got 5000"),
        ({"binarize": 1}, "binarize must be true or false"),
    ],
)
def test_model_messages_name_the_field_and_the_rule(kwargs, message):
    with pytest.raises(ConfigError) as e:
        ModelConfig(**kwargs)
    assert str(e.value) == message
    assert e.value.field == next(iter(kwargs)) and message == f"{e.value.field} {e.value.detail}"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"lr": 0.0}, "lr must be in (0, 10], got 0.0"),
        ({"epochs": 100_001}, "epochs must be in 1..100000, got 100001"),
        ({"log_every": 0}, "log_every must be >= 1, got 0"),
        ({"memory_budget_mb": -1.0}, "memory_budget_mb must be >= 0, got -1.0"),
        ({"workers": 65}, "workers must be in 0..64, got 65"),
        ({"dataset": None}, "dataset must be given"),
        ({"device": "tpu"}, "device must be auto, cpu, cuda or mps, got 'tpu'"),
    ],
)
def test_train_messages_name_the_field_and_the_rule(kwargs, message):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**kwargs)
    assert str(e.value) == message


def test_optional_fields_take_none_or_a_value_in_bounds():
    assert TrainConfig(memory_budget_mb=None, workers=None).workers is None
    assert TrainConfig(memory_budget_mb=0, workers=0).memory_budget_mb == 0
    with pytest.raises(ConfigError, match="memory_budget_mb"):
        TrainConfig(memory_budget_mb=True)


def test_cross_field_rules_stay_special():
    with pytest.raises(ConfigError, match=r"conv needs square images of \(28, 32, 64\)") as e:
        ModelConfig(arch="conv", image_shape=(1, 30, 30))
    assert e.value.field is None
    with pytest.raises(ConfigError, match="at most 4 stride-2 layers"):
        ModelConfig(arch="conv", image_shape=(1, 32, 32), hidden=(8,) * 5)
    assert ModelConfig(arch="conv", image_shape=(3, 64, 64), hidden=(8, 16)).arch == "conv"


def test_a_new_option_is_one_line():
    @dataclass(frozen=True)
    class Demo:
        size: int = option(3, "how many", label="Size", flag="--size", min=1, max=5)
        mode: str = option("a", choices=("a", "b"))

        def __post_init__(self) -> None:
            check_fields(self)

    assert Demo(size=5, mode="b").size == 5
    with pytest.raises(ConfigError, match=r"^size must be in 1\.\.5, got 9$"):
        Demo(size=9)
    with pytest.raises(ConfigError, match="mode must be one of"):
        Demo(mode="c")
    assert meta(Demo, "size") == {"help": "how many", "label": "Size", "flag": "--size", "min": 1, "max": 5}
    assert label(Demo, "size") == "Size" and label(Demo, "mode") == "mode"


def test_labels_name_options_in_words():
    assert label(ModelConfig, "latent_dim") == "Latent size"
    assert label(TrainConfig, "data_dir") == "MNIST data folder"
    assert label(TrainConfig, "eval_batch_size") == "eval batch size"


@pytest.mark.parametrize("text,sizes", [("512,256", (512, 256)), (" 64 ", (64,)), ("12,,3", (12, 3))])
def test_parse_ints_reads_sizes(text, sizes):
    assert parse_ints(text) == sizes


@pytest.mark.parametrize("text", ["abc", "12,,x", "", ",", "0", "4,-1", "1.5"])
def test_parse_ints_refuses_what_is_not_sizes(text):
    with pytest.raises(ValueError, match=repr(text).replace("(", r"\(").replace(".", r"\.")):
        parse_ints(text)
