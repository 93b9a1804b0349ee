"""BigGAN discriminator D: the full projection discriminator (for GAN training) and the
feature path of its first blocks that the correspondence network reads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import D_FEATURE_BLOCKS, GCPConfig
from .layers import Attention, DBlock, SNEmbedding, SNLinear


def discriminator_blocks(config: GCPConfig, count: int | None = None) -> nn.ModuleList:
    """The first `count` (default all) D stages: a DBlock, plus attention where set."""
    stages = []
    for i, (cin, cout, down, size) in enumerate(config.d_blocks[:count]):
        stage = [DBlock(cin, cout, preactivation=i > 0, downsample=down, sn_eps=config.sn_eps)]
        if size == config.attention_resolution:
            stage.append(Attention(cout, spectral_norm=True, sn_eps=config.sn_eps))
        stages.append(nn.ModuleList(stage))
    return nn.ModuleList(stages)


def feature_state_dict(discriminator_state: dict) -> dict:
    """The entries of a full D state dict that `DiscriminatorFeatures` holds."""
    return {k: v for k, v in discriminator_state.items()
            if k.startswith("blocks.") and int(k.split(".")[1]) < D_FEATURE_BLOCKS}


def _run_stage(stage: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
    for module in stage:
        h = module(h)
    return h


def _as_rgb(x: torch.Tensor) -> torch.Tensor:
    """A 1-channel input is seen as gray RGB (the official D repeats it)."""
    return x.expand(-1, 3, -1, -1) if x.size(1) == 1 else x


class DiscriminatorFeatures(nn.Module):
    """D stages 0..2 (same parameter names as in the full D) as a frozen feature net.

    x (B, 1 or 3, H, W) in [-1, 1] -> [stage-1 output (B, 2 d_ch, H/4, W/4),
    stage-2 output (B, 4 d_ch, H/8, W/8)]; stage 0 runs but is not returned.
    """

    def __init__(self, config: GCPConfig, blocks: nn.ModuleList | None = None):
        super().__init__()
        self.blocks = blocks if blocks is not None else discriminator_blocks(
            config, D_FEATURE_BLOCKS)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = _run_stage(self.blocks[0], _as_rgb(x).contiguous(memory_format=torch.channels_last))
        features = []
        for stage in self.blocks[1:D_FEATURE_BLOCKS]:
            h = _run_stage(stage, h)
            features.append(h)
        return features


class BigGANDiscriminator(nn.Module):
    """Full BigGAN projection discriminator, for training the project's own G and E.

    logit = linear(sum_hw relu(h)) + <embed(class), sum_hw relu(h)>.
    """

    def __init__(self, config: GCPConfig):
        super().__init__()
        self.config = config
        self.blocks = discriminator_blocks(config)
        width = config.d_blocks[-1][1]
        self.linear = SNLinear(width, 1, eps=config.sn_eps)
        self.embed = SNEmbedding(config.n_classes, width, eps=config.sn_eps)

    def forward(self, x: torch.Tensor, class_index: torch.Tensor) -> torch.Tensor:
        """x (B, 1 or 3, R, R) in [-1, 1], class_index (B,) -> logits (B, 1)."""
        h = _as_rgb(x).contiguous(memory_format=torch.channels_last)
        for stage in self.blocks:
            h = _run_stage(stage, h)
        pooled = F.relu(h).sum(dim=(2, 3))                                   # (B, C)
        projection = (self.embed(class_index) * pooled).sum(1, keepdim=True)
        return self.linear(pooled) + projection

    def feature_net(self) -> DiscriminatorFeatures:
        """The correspondence feature path, sharing this D's parameters."""
        return DiscriminatorFeatures(self.config, nn.ModuleList(self.blocks[:D_FEATURE_BLOCKS]))
