"""Adversarial losses.

Hinge loss for the BigGAN prior (stage 0, as BigGAN), with a mode-seeking term (MSGAN,
Mao et al. 2019) against a G that ignores z; least-squares (LSGAN) loss for the
colorization discriminator (stage 2, as the paper), where D returns one patch map per
scale and the loss is the mean over scales.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


def lsgan_d_loss(real_maps: Sequence[torch.Tensor], fake_maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Real patches pushed to 1, generated patches to 0, averaged over the scales."""
    terms = [((r - 1) ** 2).mean() + (f ** 2).mean() for r, f in zip(real_maps, fake_maps, strict=True)]
    return 0.5 * torch.stack(terms).mean()


def lsgan_g_loss(fake_maps: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack([((f - 1) ** 2).mean() for f in fake_maps]).mean()


def mode_seeking_loss(images_a: torch.Tensor, images_b: torch.Tensor, z_a: torch.Tensor,
                      z_b: torch.Tensor, pool: int = 4) -> torch.Tensor:
    """1 / (image distance / latent distance) for pairs that share a class: small when
    different z give different images. Images (B, 3, H, W) are compared average-pooled by
    `pool` (the colour layout, not pixel noise); mean absolute differences."""
    image_distance = (F.avg_pool2d(images_a, pool) - F.avg_pool2d(images_b, pool)).abs().mean()
    latent_distance = (z_a - z_b).abs().mean()
    return 1.0 / (image_distance / latent_distance + 1e-5)
