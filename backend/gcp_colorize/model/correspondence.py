"""Correspondence between the gray input and the GAN reference, and the feature warp.

D features of both images -> private residual blocks -> L2 normalise -> + coordinates
-> shared residual blocks -> 1x1 embeddings theta (query) / phi (reference), centred and
L2-normalised -> corr = softmax(theta^T phi / T) over reference positions. A map of size
s * grid is warped by moving its s x s patches with corr.
"""

from __future__ import annotations

import math
import sys

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd
from .config import GCPConfig
from .layers import instance_norm

# The official code adds the float64 machine epsilon to the norms.
NORM_EPS = sys.float_info.epsilon
# Query rows of the correlation matrix computed at once by `warp` (16 MiB at 4096 columns).
QUERY_ROWS = 1024


class ResidualBlock(nn.Module):
    """prelu(x + IN(conv2(pad(prelu(IN(conv1(pad(x)))))))), one PReLU slope used twice,
    reflect padding, InstanceNorm without affine. (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = winograd.Conv2d(channels, channels, 3)
        self.conv2 = winograd.Conv2d(channels, channels, 3)
        self.prelu = nn.PReLU()

    def forward(self, x):
        out = self.prelu(instance_norm(self.conv1(F.pad(x, (1, 1, 1, 1), mode="reflect"))))
        out = instance_norm(self.conv2(F.pad(out, (1, 1, 1, 1), mode="reflect")))
        return self.prelu(out + x)


def normalize_channels(x: torch.Tensor) -> torch.Tensor:
    """x / (L2 norm over dim 1 + eps)."""
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + NORM_EPS)


def add_coordinates(x: torch.Tensor) -> torch.Tensor:
    """Append x (along width), y (along height) in [-1, 1] and r = sqrt(x^2 + y^2).
    (B, C, H, W) -> (B, C + 3, H, W)."""
    b, _, h, w = x.shape
    xs = (2 * torch.arange(w, dtype=torch.float32, device=x.device) / (w - 1) - 1).to(x.dtype)
    ys = (2 * torch.arange(h, dtype=torch.float32, device=x.device) / (h - 1) - 1).to(x.dtype)
    xx = xs.view(1, 1, 1, w).expand(b, 1, h, w)
    yy = ys.view(1, 1, h, 1).expand(b, 1, h, w)
    return torch.cat((x, xx, yy, torch.sqrt(xx ** 2 + yy ** 2)), dim=1)


def patches_to_rows(x: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, C, s*grid, s*grid) -> (B, grid*grid, C*s*s): one row per non-overlapping s x s
    patch (rows row-major over the grid, as `unfold(x, s, stride=s)` transposed)."""
    s = x.size(-1) // grid
    if x.size(-1) != s * grid or x.size(-2) != s * grid:
        raise ValueError(f"map of size {tuple(x.shape[-2:])} is not a multiple of the "
                         f"{grid}x{grid} correspondence grid")
    return F.pixel_unshuffle(x, s).flatten(2).transpose(1, 2)


def rows_to_patches(rows: torch.Tensor, channels: int, grid: int) -> torch.Tensor:
    """Inverse of `patches_to_rows`: (B, grid*grid, C*s*s) -> (B, C, s*grid, s*grid)."""
    b = rows.size(0)
    s = math.isqrt(rows.size(2) // channels)
    return F.pixel_shuffle(rows.transpose(1, 2).reshape(b, channels * s * s, grid, grid), s)


class CorrespondenceNet(nn.Module):
    """Embeds the D features of the query (gray input) and the reference (G's image)."""

    def __init__(self, config: GCPConfig):
        super().__init__()
        self.temperature = config.corr_temperature
        nc = config.corr_feat_nc
        # private_layer[0] for the query, [1] for the reference.
        self.private_layer = nn.ModuleList([ResidualBlock(nc), ResidualBlock(nc)])
        self.share_layer = nn.Sequential(ResidualBlock(nc + 3), ResidualBlock(nc + 3))
        self.phi = nn.Conv2d(nc + 3, config.corr_nonlocal_nc, 1)
        self.theta = nn.Conv2d(nc + 3, config.corr_nonlocal_nc, 1)

    def _private(self, d_features: list[torch.Tensor], private: nn.Module) -> torch.Tensor:
        """[(B, C1, g, g), (B, C2, g/2, g/2)] -> (B, C1 + C2 + 3, g, g): the side's own
        blocks, unit channel vectors, coordinates (channels-last memory)."""
        fine, coarse = d_features
        h = torch.cat((fine, F.interpolate(coarse, scale_factor=2, mode="nearest")), dim=1)
        h = private(h.contiguous(memory_format=torch.channels_last))
        return add_coordinates(normalize_channels(h))

    @staticmethod
    def _unit_rows(e: torch.Tensor) -> torch.Tensor:
        """1x1 embedding (B, nl, g, g) -> (B, g*g, nl): centred over channels, unit rows."""
        e = e.flatten(2)
        return normalize_channels(e - e.mean(dim=1, keepdim=True)).transpose(1, 2)

    def forward(self, query_features: list[torch.Tensor],
                ref_features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """D features of the query and reference -> theta (B, N, nl), phi (B', N, nl),
        N = grid * grid, the unit embeddings whose scaled dot products are the logits.
        The reference side may hold more images than the query (B' != B: training embeds
        G's image and the colour photo of one query in one pass)."""
        query = self._private(query_features, self.private_layer[0])
        ref = self._private(ref_features, self.private_layer[1])
        # The shared blocks see both sides as one batch (one pass over their weights).
        shared = self.share_layer(torch.cat((query, ref)))
        query, ref = shared.split((query.size(0), ref.size(0)))
        return self._unit_rows(self.theta(query)), self._unit_rows(self.phi(ref))

    def correlation(self, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """theta (B, Nq, nl), phi (B, Nr, nl) -> corr (B, Nq, Nr), rows sum to 1.
        In at least fp32 even under autocast: 1/T = 100 would magnify half-precision
        rounding of the scores into visibly different weights."""
        dtype = torch.promote_types(theta.dtype, torch.float32)
        with torch.autocast(theta.device.type, enabled=False):
            scores = theta.to(dtype) @ phi.to(dtype).transpose(1, 2)
        return torch.softmax(scores.div_(self.temperature), dim=-1)  # no grad needs scores

    def warp(self, theta: torch.Tensor, phi: torch.Tensor,
             maps: list[torch.Tensor]) -> list[torch.Tensor]:
        """Warp reference-aligned maps to the query: for each map (B, C, s*g, s*g) each
        output patch is the corr-weighted mean of the reference's s x s patches.

        corr is made QUERY_ROWS rows at a time, so the full N x N matrix never exists;
        each block of rows serves every map.
        """
        grid = math.isqrt(theta.size(1))
        if grid * grid != theta.size(1):
            raise ValueError(f"{theta.size(1)} query positions do not form a square grid")
        rows = [patches_to_rows(m, grid) for m in maps]                  # (B, N, C*s*s) each
        warped = [[] for _ in maps]
        for i in range(0, theta.size(1), QUERY_ROWS):
            corr = self.correlation(theta[:, i:i + QUERY_ROWS], phi)
            for parts, values in zip(warped, rows):
                parts.append(corr @ values)
        return [rows_to_patches(torch.cat(parts, dim=1), m.size(1), grid)
                for parts, m in zip(warped, maps)]
