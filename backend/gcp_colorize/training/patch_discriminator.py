"""Multi-scale PatchGAN discriminator with spectral norm (stage 2's adversary).

As in pix2pixHD / the paper: the same PatchGAN layout runs on the image at full, half and
quarter resolution (average-pooled), each judging overlapping patches; spectral norm on
every conv keeps it Lipschitz. Its input is CIELAB in the network's ranges (L/50 - 1,
ab/110), so it judges chroma given luminance, like the official model's discriminator.
Training-only: never exported, so torch's own spectral-norm parametrisation serves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """Strided 4x4 convs: (B, C, H, W) -> (B, 1, ~H/8, ~W/8) patch logits."""

    def __init__(self, in_channels: int = 3, width: int = 32, n_layers: int = 3):
        super().__init__()
        layers, c_in = [], in_channels
        for i in range(n_layers):
            c_out = width * 2 ** i
            layers += [spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c_in = c_out
        layers += [spectral_norm(nn.Conv2d(c_in, c_in * 2, 4, 1, 1)), nn.LeakyReLU(0.2),
                   spectral_norm(nn.Conv2d(c_in * 2, 1, 4, 1, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


MIN_PATCH_INPUT = 32  # a 3-layer PatchGAN needs at least this many pixels per side


def scales_for(resolution: int, most: int = 3) -> int:
    """How many halvings of a `resolution` image a 3-layer PatchGAN can judge (<= most)."""
    scales = 0
    while scales < most and resolution >= MIN_PATCH_INPUT:
        scales, resolution = scales + 1, resolution // 2
    if not scales:
        raise ValueError(f"images of {resolution} px are too small for a PatchGAN "
                         f"(at least {MIN_PATCH_INPUT})")
    return scales


class MultiScalePatchDiscriminator(nn.Module):
    """`scales` PatchGANs on successively halved inputs: (B, C, H, W) -> list of patch maps."""

    def __init__(self, in_channels: int = 3, width: int = 32, scales: int = 3, n_layers: int = 3):
        super().__init__()
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(in_channels, width, n_layers) for _ in range(scales))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for i, d in enumerate(self.discriminators):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            maps.append(d(x))
        return maps
