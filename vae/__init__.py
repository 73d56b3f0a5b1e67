"""vae: Variational AutoEncoders in pure PyTorch (no Streamlit here).

The pieces, named after the math (Kingma & Welling 2013):
``VAE.encode -> DiagonalGaussian`` (the posterior q(z|x): ``mean``, ``std``, ``sample(generator)``,
the reparameterization z = mu + sigma * eps, ``kl()``, ``log_prob(z)``), ``VAE.decode``,
``objectives.elbo_terms`` (E_q[log p(x|z)] - KL), ``objectives.iwae_bound``.
"""

import importlib

# Every name is imported on first use: `import vae.meta` then costs no torch
# import (the app shows its model card meanwhile), and `python -m vae.train` / `vae.evaluate`
# do not find their module already imported. (`vae.evaluate` is the module; its function is
# `vae.evaluate.evaluate`.)
_LAZY = {
    "Checkpoint": "checkpoint",
    "CheckpointError": "meta",
    "load_checkpoint": "checkpoint",
    "save": "checkpoint",
    "ConfigError": "config",
    "ModelConfig": "config",
    "TrainConfig": "config",
    "DataError": "data",
    "Dataset": "data",
    "load_dataset": "data",
    "ImageError": "images",
    "preprocess": "images",
    "AE": "models",
    "VAE": "models",
    "build_model": "models",
    "elbo_terms": "objectives",
    "iwae_bound": "objectives",
    "model_input": "objectives",
    "DiagonalGaussian": "distributions",
    "fit": "train",
    "History": "train",
    "Progress": "train",
    "TrainingError": "train",
    "score_images": "evaluate",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'vae' has no attribute {name!r}")


__all__ = sorted(_LAZY)
