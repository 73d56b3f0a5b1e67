"""VAE and AE models (Kingma & Welling 2013), MLP or convolutional.

Shapes: images ``x`` are (N, C, H, W) in [0, 1]; codes ``z``, ``mu`` and ``logvar`` are
(N, D) with D = ``config.latent_dim``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .config import ModelConfig


def _conv_sizes(size: int, n_layers: int) -> list[int]:
    """Spatial size after each k=4, s=2, p=1 convolution, starting with ``size``."""
    sizes = [size]
    for _ in range(n_layers):
        sizes.append((sizes[-1] + 2 - 4) // 2 + 1)
    return sizes


class Encoder(nn.Module):
    """x (N, C, H, W) -> features (N, F)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c, h, w = config.image_shape
        layers: list[nn.Module] = []
        if config.arch == "mlp":
            layers.append(nn.Flatten())
            width = config.n_pixels
            for hidden in config.hidden:
                layers += [nn.Linear(width, hidden), nn.ReLU()]
                width = hidden
            self.out_features = width
        else:
            channels = c
            for hidden in config.hidden:
                layers += [nn.Conv2d(channels, hidden, 4, stride=2, padding=1), nn.ReLU()]
                channels = hidden
            side = _conv_sizes(h, len(config.hidden))[-1]
            layers.append(nn.Flatten())
            self.out_features = channels * side * side
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """z (N, D) -> logits (N, C, H, W) of the decoder's mean (sigmoid gives the mean)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c, h, w = config.image_shape
        self.image_shape = config.image_shape
        layers: list[nn.Module] = []
        if config.arch == "mlp":
            width = config.latent_dim
            for hidden in reversed(config.hidden):
                layers += [nn.Linear(width, hidden), nn.ReLU()]
                width = hidden
            layers += [nn.Linear(width, config.n_pixels), nn.Unflatten(1, config.image_shape)]
        else:
            sizes = _conv_sizes(h, len(config.hidden))
            channels = list(config.hidden)
            layers += [
                nn.Linear(config.latent_dim, channels[-1] * sizes[-1] ** 2),
                nn.ReLU(),
                nn.Unflatten(1, (channels[-1], sizes[-1], sizes[-1])),
            ]
            # Walk the encoder backwards; output_padding restores odd sizes (7 -> 3 -> 7).
            outs = channels[-2::-1] + [c]
            for i, out_ch in enumerate(outs):
                src, dst = sizes[-1 - i], sizes[-2 - i]
                pad = dst - 2 * src
                layers.append(nn.ConvTranspose2d(channels[-1 - i], out_ch, 4, 2, 1, output_padding=pad))
                if i < len(outs) - 1:
                    layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class VAE(nn.Module):
    """Variational autoencoder with a diagonal-Gaussian q(z|x) and prior N(0, I)."""

    deterministic = False

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        n_stats = config.latent_dim if self.deterministic else 2 * config.latent_dim
        self.to_stats = nn.Linear(self.encoder.out_features, n_stats)
        self.decoder = Decoder(config)
        if config.likelihood == "gaussian" and config.learn_sigma:
            self.log_sigma = nn.Parameter(torch.tensor(math.log(config.sigma)))
        else:
            self.register_buffer("log_sigma", torch.tensor(math.log(config.sigma)), persistent=False)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return self.to_stats.weight.device

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|x): x (N, C, H, W) -> (mu, logvar), each (N, D)."""
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar

    def reparameterize(self, mu: Tensor, logvar: Tensor, n_samples: int | None = None) -> Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I).

        Returns (N, D), or (L, N, D) when ``n_samples`` = L is given.
        """
        std = torch.exp(0.5 * logvar)
        shape = mu.shape if n_samples is None else (n_samples, *mu.shape)
        eps = torch.randn(shape, dtype=mu.dtype, device=mu.device)
        return mu + std * eps

    def decode_logits(self, z: Tensor) -> Tensor:
        """z (N, D) -> pre-sigmoid decoder output (N, C, H, W)."""
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        """z (N, D) -> the decoder's mean in [0, 1], (N, C, H, W).

        Bernoulli probabilities, or the mean of the Gaussian decoder.
        """
        return torch.sigmoid(self.decoder(z))

    def reconstruct(self, x: Tensor, sample: bool = False) -> Tensor:
        """Decode the posterior mean of x (or one sample of q(z|x) if ``sample``)."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar) if sample else mu
        return self.decode(z)

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """Decode n draws z ~ N(0, temperature^2 I): (n, C, H, W)."""
        z = torch.randn(n, self.latent_dim, generator=generator, device="cpu").to(self.device)
        return self.decode(z * temperature)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x -> (decoder logits for one z per image, mu, logvar)."""
        mu, logvar = self.encode(x)
        return self.decode_logits(self.reparameterize(mu, logvar)), mu, logvar


class AE(VAE):
    """Plain autoencoder: the same networks with a deterministic code and no KL term.

    ``encode`` returns ``logvar = None``; ``reparameterize`` returns the code itself.
    """

    deterministic = True

    def encode(self, x: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return self.to_stats(self.encoder(x)), None

    def reparameterize(self, mu: Tensor, logvar: Tensor | None = None, n_samples: int | None = None) -> Tensor:
        return mu if n_samples is None else mu.expand(n_samples, *mu.shape)


def build_model(config: ModelConfig) -> VAE:
    """The model a config describes (``VAE`` or ``AE``), freshly initialised."""
    return (AE if config.kind == "ae" else VAE)(config)
