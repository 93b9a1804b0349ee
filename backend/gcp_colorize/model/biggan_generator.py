"""BigGAN generator G: the colour prior. Returns the image and its multi-scale features."""

from __future__ import annotations

import torch
from torch import nn

from .config import G_BOTTOM_WIDTH, GCPConfig
from .layers import AffineBatchNorm, Attention, GBlock, SNConv2d, SNLinear


class BigGANGenerator(nn.Module):
    """Class-conditional BigGAN with hierarchical z and a shared class embedding.

    z (B, dim_z) is cut into `z_slots` chunks of `z_chunk`: chunk 0 feeds the first
    linear layer (-> 4x4), chunk i+1 conditions block i together with the class
    embedding (embedding first). Trailing dims beyond slots * chunk are ignored (the
    official 256 model ignores z[:, 119]).
    """

    def __init__(self, config: GCPConfig):
        super().__init__()
        self.config = config
        eps = dict(bn_eps=config.bn_eps, sn_eps=config.sn_eps)
        cond_dim = config.shared_dim + config.z_chunk
        first_channels = config.g_block_channels[0][0]
        self.shared = nn.Embedding(config.n_classes, config.shared_dim)
        self.linear = SNLinear(config.z_chunk, first_channels * G_BOTTOM_WIDTH ** 2,
                               eps=config.sn_eps)
        blocks = []
        for (cin, cout), size in zip(config.g_block_channels, config.g_block_resolutions):
            stage = [GBlock(cin, cout, cond_dim, spectral_norm=True, resample="up", **eps)]
            if size == config.attention_resolution:
                stage.append(Attention(cout, spectral_norm=True, sn_eps=config.sn_eps))
            blocks.append(nn.ModuleList(stage))
        self.blocks = nn.ModuleList(blocks)
        last_channels = config.g_block_channels[-1][1]
        self.output_layer = nn.Sequential(
            AffineBatchNorm(last_channels, config.bn_eps),
            nn.ReLU(),
            SNConv2d(last_channels, 3, 3, padding=1, eps=config.sn_eps),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor):
        """z (B, dim_z), y = self.shared(class) (B, shared_dim) ->
        image (B, 3, R, R) in [-1, 1] and {size: feature (B, C_size, size, size)} for the
        sizes in `config.feature_resolutions` (R/4 after attention, R/2, R)."""
        chunk = self.config.z_chunk
        h = self.linear(z[:, :chunk]).view(z.size(0), -1, G_BOTTOM_WIDTH, G_BOTTOM_WIDTH)
        h = h.contiguous(memory_format=torch.channels_last)
        wanted = self.config.feature_resolutions
        features = {}
        for i, (stage, size) in enumerate(zip(self.blocks, self.config.g_block_resolutions)):
            cond = torch.cat([y, z[:, chunk * (i + 1):chunk * (i + 2)]], dim=1)
            h = stage[0](h, cond)
            for attention in stage[1:]:
                h = attention(h)
            if size in wanted:
                features[size] = h
        return torch.tanh(self.output_layer(h)), features
