"""VAE and AE models (Kingma & Welling 2013), MLP or convolutional.

Shapes: images ``x`` are (N, C, H, W) in [0, 1]; codes ``z`` are (N, D) with
D = ``config.latent_dim``. ``encode`` returns the posterior q(z|x) as a ``DiagonalGaussian``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .config import ModelConfig
from .distributions import DiagonalGaussian


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

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """PyTorch's default initialisation of every layer, drawn from ``generator`` (a seeded run
        never touches the global RNG, which another thread may be using)."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(m.weight)
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        self.log_sigma.fill_(math.log(self.config.sigma))

    def encode(self, x: Tensor) -> DiagonalGaussian:
        """q(z|x) for x (N, C, H, W): a posterior with ``mean`` and ``std`` of shape (N, D)."""
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return DiagonalGaussian(mu, logvar)

    def decode_logits(self, z: Tensor) -> Tensor:
        """z (N, D) -> pre-sigmoid decoder output (N, C, H, W)."""
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        """z (N, D) -> the decoder's mean in [0, 1], (N, C, H, W).

        Bernoulli probabilities, or the mean of the Gaussian decoder.
        """
        return torch.sigmoid(self.decoder(z))

    def reconstruct(self, x: Tensor, generator: torch.Generator | None = None, sample: bool = False) -> Tensor:
        """Decode the posterior mean of x (or, with ``sample``, one draw z ~ q(z|x)): (N, C, H, W)."""
        q = self.encode(x)
        return self.decode(q.sample(generator) if sample else q.mean)

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """Decode n draws z ~ N(0, temperature^2 I): (n, C, H, W). ``generator`` lives on the CPU."""
        z = torch.randn(n, self.latent_dim, generator=generator, device="cpu").to(self.device)
        return self.decode(z * temperature)


class AE(VAE):
    """Plain autoencoder: the same networks with a deterministic code and no KL term.

    ``encode`` returns a point mass at the code (std 0, KL 0).
    """

    deterministic = True

    def encode(self, x: Tensor) -> DiagonalGaussian:
        return DiagonalGaussian(self.to_stats(self.encoder(x)))


def build_model(config: ModelConfig, generator: torch.Generator | None = None) -> VAE:
    """The model a config describes (``VAE`` or ``AE``) on the CPU, freshly initialised: from ``generator``
    if given (the global RNG untouched), else from the global RNG as torch's layers do by default."""
    cls = AE if config.kind == "ae" else VAE
    if generator is None:
        return cls(config)
    with torch.device("meta"):  # layers built without drawing their default init
        model = cls(config)
    _materialize(model)
    model.reset_parameters(generator)
    return model


def _materialize(module: nn.Module) -> None:
    """Give a module built on the meta device uninitialised CPU storage, in place. Module.to_empty does
    the same through empty_like, whose meta-tensor path imports SymPy: 0.3 s of a 12 s training run."""
    for m in module.modules():
        for name, p in m._parameters.items():
            if p is not None:
                m._parameters[name] = nn.Parameter(torch.empty(p.shape, dtype=p.dtype), p.requires_grad)
        for name, b in m._buffers.items():
            if b is not None:
                m._buffers[name] = torch.empty(b.shape, dtype=b.dtype)
