"""vae: Variational AutoEncoders in pure PyTorch (no Streamlit here).

The pieces, named after the math (Kingma & Welling 2013):
``VAE.encode -> (mu, logvar)``, ``VAE.reparameterize`` (z = mu + sigma * eps),
``VAE.decode``, ``objectives.elbo_terms`` (E_q[log p(x|z)] - KL), ``objectives.iwae_bound``.
"""

from .checkpoint import Checkpoint, CheckpointError, load, load_checkpoint, save
from .config import ConfigError, ModelConfig, TrainConfig
from .data import DataError, Dataset, load_dataset
from .images import ImageError, preprocess
from .models import AE, VAE, build_model
from .objectives import elbo_terms, iwae_bound, kl_divergence

# vae.train and vae.evaluate are also `python -m` entry points: import them lazily so that
# running them as scripts does not find them already imported. (`vae.evaluate` is the module;
# its function is `vae.evaluate.evaluate`.)
_LAZY = {
    "fit": "train",
    "History": "train",
    "Progress": "train",
    "TrainingError": "train",
    "score_images": "evaluate",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'vae' has no attribute {name!r}")


__all__ = [
    "AE",
    "VAE",
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Dataset",
    "History",
    "ImageError",
    "ModelConfig",
    "Progress",
    "TrainConfig",
    "TrainingError",
    "build_model",
    "elbo_terms",
    "fit",
    "iwae_bound",
    "kl_divergence",
    "load",
    "load_checkpoint",
    "load_dataset",
    "preprocess",
    "save",
    "score_images",
]
