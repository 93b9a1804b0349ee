"""The colorization network: x_l -> ab, modulated by the warped GAN features via SPADE."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .classifier import SEMANTIC_CHANNELS
from .config import GCPConfig
from .layers import InstanceNorm
from .spade import SPADE, SPADEResBlock


class ColorizationNet(nn.Module):
    """Encoder (R -> R/4), SPADE residual blocks at R/4, two transposed-conv ups, tanh head.

    encoder: reflect pad 3, conv7 (1 -> ngf), IN, ReLU, 2 x [conv3 stride 2, IN, ReLU];
    SPADE widths are the channels of the warped G features at R/4, R/2 and R.
    With config.semantic_features (ours), the classifier's feature maps of the gray input
    are resized to R/4 and added to the encoder's output by a 1x1 conv that starts at
    zero (a net trained without them computes the same colours with it).
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
        self.semantic_projection = None
        if config.semantic_features:
            self.semantic_projection = nn.Conv2d(SEMANTIC_CHANNELS, ngf * 4, 1)
            nn.init.zeros_(self.semantic_projection.weight)
            nn.init.zeros_(self.semantic_projection.bias)
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

    def forward(self, x_l: torch.Tensor, warped: dict[int, torch.Tensor],
                semantic: torch.Tensor | None = None) -> torch.Tensor:
        """x_l (B, 1, H, W) = L/50 - 1; warped {R/4: (B, C4, H/4, W/4), R/2: ..., R: ...};
        semantic (B, SEMANTIC_CHANNELS, h, w), any h, w (only with semantic_features)
        -> ab_norm (B, 2, H, W) = ab/110 in [-1, 1]."""
        if (semantic is None) != (self.semantic_projection is None):
            raise ValueError("semantic maps are needed exactly when config.semantic_features is on")
        quarter, half, full = (warped[size].contiguous(memory_format=torch.channels_last)
                               for size in self.feature_sizes)
        x = self.encoder(x_l.contiguous(memory_format=torch.channels_last))
        if semantic is not None:
            # one scale for every photo's maps (their raw values reach the tens), so the
            # projection's learning rate means the same for all
            semantic = F.interpolate(F.group_norm(semantic.float(), 1).to(x.dtype),
                                     size=x.shape[-2:], mode="bilinear", align_corners=False)
            x = x + self.semantic_projection(semantic.contiguous(memory_format=torch.channels_last))
        for block in self.res_blks:
            x = block(x, quarter)
        x = self.up_conv1(F.leaky_relu(self.up_norm1(x, quarter), 0.2))
        x = self.up_conv2(F.leaky_relu(self.up_norm2(x, half), 0.2))
        return self.head(F.leaky_relu(self.up_norm3(x, full), 0.2))
