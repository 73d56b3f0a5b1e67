"""Fashion-MNIST: 70,000 Zalando product images in ten kinds, 28x28, in MNIST's format (FashionMNIST/raw)."""

from __future__ import annotations

from .mnist import idx_spec

FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

SPEC = idx_spec(
    "fashion-mnist",
    "FashionMNIST/raw",
    title="Fashion-MNIST",
    summary="70,000 Zalando product images in ten kinds, 28x28; its four files go in the data folder's "
    "FashionMNIST/raw.",
    order=40,
    style="centered",
    label_names=FASHION_NAMES,
)
