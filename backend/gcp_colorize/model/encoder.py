"""GAN encoder E: inverts the gray input into BigGAN's latent space, z = E(x_l, class)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import GCPConfig
from .layers import Attention, GBlock


class GANEncoder(nn.Module):
    """BigGAN-D-shaped stack of conditional GBlocks that pool instead of upsampling.

    No spectral norm; conditional BN from E's OWN class embedding `shared`; attention
    where D has it; head = Linear(mean over H, W of ReLU(h)).
    """

    def __init__(self, config: GCPConfig):
        super().__init__()
        self.config = config
        self.shared = nn.Embedding(config.n_classes, config.shared_dim)
        stages = []
        for cin, cout, down, size in config.e_blocks:
            stage = [GBlock(cin, cout, config.shared_dim, spectral_norm=False,
                            resample="down" if down else None, bn_eps=config.bn_eps)]
            if size == config.attention_resolution:
                stage.append(Attention(cout, spectral_norm=False))
            stages.append(nn.ModuleList(stage))
        self.blocks = nn.ModuleList(stages)
        self.linear = nn.Linear(config.e_blocks[-1][1], config.dim_z)

    def forward(self, x_l: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x_l (B, 1, H, W) = L/50 - 1, y = self.shared(class) (B, shared_dim) -> z (B, dim_z)."""
        h = x_l.contiguous(memory_format=torch.channels_last)
        for stage in self.blocks:
            h = stage[0](h, y)
            for attention in stage[1:]:
                h = attention(h)
        return self.linear(F.relu(h).mean(dim=(2, 3)))
