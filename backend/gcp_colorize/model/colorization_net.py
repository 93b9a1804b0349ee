"""The colorization network: x_l -> ab, modulated by the warped GAN features via SPADE."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import GCPConfig
from .layers import InstanceNorm
from .spade import SPADE, SPADEResBlock


class ColorizationNet(nn.Module):
    """Encoder (R -> R/4), SPADE residual blocks at R/4, two transposed-conv ups, tanh head.

    encoder: reflect pad 3, conv7 (1 -> ngf), IN, ReLU, 2 x [conv3 stride 2, IN, ReLU];
    SPADE widths are the channels of the warped G features at R/4, R/2 and R.
    Runs in channels-last memory (faster convolutions on CPU).
    """

    def __init__(self, config: GCPConfig):
        super().__init__()
        ngf = config.color_ngf
        feat = config.feature_channels
        quarter, half, full = config.feature_resolutions
        self.feature_sizes = (quarter, half, full)
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(1, ngf, 7),
            InstanceNorm(),
            nn.ReLU(),
            nn.Conv2d(ngf, ngf * 2, 3, stride=2, padding=1),
            InstanceNorm(),
            nn.ReLU(),
            nn.Conv2d(ngf * 2, ngf * 4, 3, stride=2, padding=1),
            InstanceNorm(),
            nn.ReLU(),
        )
        self.res_blks = nn.ModuleList(
            SPADEResBlock(ngf * 4, ngf * 4, feat[quarter]) for _ in range(config.color_res_blocks))
        self.up_norm1 = SPADE(ngf * 4, feat[quarter])
        self.up_conv1 = nn.ConvTranspose2d(ngf * 4, ngf * 2, 3, stride=2, padding=1,
                                           output_padding=1)
        self.up_norm2 = SPADE(ngf * 2, feat[half])
        self.up_conv2 = nn.ConvTranspose2d(ngf * 2, ngf, 3, stride=2, padding=1,
                                           output_padding=1)
        self.up_norm3 = SPADE(ngf, feat[full])
        self.head = nn.Sequential(nn.Conv2d(ngf, 2, 3, padding=1), nn.Tanh())

    def forward(self, x_l: torch.Tensor, warped: dict[int, torch.Tensor]) -> torch.Tensor:
        """x_l (B, 1, H, W) = L/50 - 1; warped {R/4: (B, C4, H/4, W/4), R/2: ..., R: ...}
        -> ab_norm (B, 2, H, W) = ab/110 in [-1, 1]."""
        quarter, half, full = (warped[size].contiguous(memory_format=torch.channels_last)
                               for size in self.feature_sizes)
        x = self.encoder(x_l.contiguous(memory_format=torch.channels_last))
        for block in self.res_blks:
            x = block(x, quarter)
        x = self.up_conv1(F.leaky_relu(self.up_norm1(x, quarter), 0.2))
        x = self.up_conv2(F.leaky_relu(self.up_norm2(x, half), 0.2))
        return self.head(F.leaky_relu(self.up_norm3(x, full), 0.2))
