"""Colour-distribution loss: how far an image's palette is from a target palette.

Per-pixel regression of ab drifts to the mean colour (sepia); an adversary corrects
that only slowly. Comparing the DISTRIBUTIONS of ab values instead (where each colour
is does not matter) rewards a colorization for having the target's range of colours:
the ground truth's for the main result, the GAN reference's for a shifted z (which is
how alternatives come to differ). Measured as a sliced Wasserstein distance: the ab
values of both images are projected on a few directions of the ab plane, sorted, and
compared (L1) — exact in 1-D, cheap, differentiable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def palette_loss(ab: torch.Tensor, target_ab: torch.Tensor, projections: int = 8,
                 size: int = 32) -> torch.Tensor:
    """Sliced Wasserstein-1 distance between the ab distributions of two batches of
    images, image by image: ab, target_ab (B, 2, H, W) -> scalar (mean over images).
    Both are first average-pooled to `size` (the palette of regions, not of noise)."""
    if ab.shape != target_ab.shape or ab.size(1) != 2:
        raise ValueError(f"expected two (B, 2, H, W) ab maps, got {tuple(ab.shape)} and "
                         f"{tuple(target_ab.shape)}")
    if ab.size(-1) > size:
        ab, target_ab = (F.adaptive_avg_pool2d(x, size) for x in (ab, target_ab))
    angles = torch.arange(projections, device=ab.device, dtype=ab.dtype) * math.pi / projections
    directions = torch.stack((angles.cos(), angles.sin()), dim=1)          # (P, 2)
    a, b = (torch.einsum("pc,bcn->bpn", directions, x.flatten(2)).sort(dim=2).values
            for x in (ab, target_ab))                                   # (B, P, N) sorted
    return (a - b).abs().mean()
