"""Colour-distribution loss: how far an image's palette is from a target palette.

Per-pixel regression of ab drifts to the mean colour (sepia); an adversary corrects
that only slowly. Comparing the DISTRIBUTIONS of ab values instead (where each colour
is does not matter) rewards a colorization for having the target's range of colours:
the ground truth's for the main result, the GAN reference's for a shifted z (which is
how alternatives come to differ). Measured as a sliced Wasserstein distance: the ab
values of both images are projected on a few directions of the ab plane, sorted, and
compared (L1) — exact in 1-D, cheap, differentiable.

Diversity loss: two shifted z for the same photo should give visibly different colours.
The palette loss alone lets the colorization net ignore the reference (its alternatives
then differ by about 1 CIEDE2000); a hinge on the distance between the two outputs'
region colours asks for the difference until it reaches a margin, and no further.
Measured as is, the easiest way to differ is a cast over the whole photo; the centred
variant removes each image's mean difference first, so only colours that change region
by region (one object's against another's) count. (Measured: it asks for no plausible
colour per object, and fine-tunes answered with blotches; weights/default/MODEL_CARD.md.)

Cast loss: the diversity fine-tune's main results gain colour partly as a tint over the
whole photo (a yellow-green cat). The L1 between the photo's mean a, b and the output's
penalises exactly that tint and nothing region by region, so it does not ask for the
muted colours that per-pixel regression asks for.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def pooled_ab_pair(ab_a: torch.Tensor, ab_b: torch.Tensor,
                   size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (B, 2, H, W) ab maps of one shape (ValueError otherwise), average-pooled to
    `size` when larger: the colours of regions, not of noise."""
    if ab_a.shape != ab_b.shape or ab_a.size(1) != 2:
        raise ValueError(f"expected two (B, 2, H, W) ab maps, got {tuple(ab_a.shape)} and "
                         f"{tuple(ab_b.shape)}")
    if ab_a.size(-1) > size:
        ab_a, ab_b = (F.adaptive_avg_pool2d(x, size) for x in (ab_a, ab_b))
    return ab_a, ab_b


def palette_loss(ab: torch.Tensor, target_ab: torch.Tensor, projections: int = 8,
                 size: int = 32) -> torch.Tensor:
    """Sliced Wasserstein-1 distance between the ab distributions of two batches of
    images, image by image: ab, target_ab (B, 2, H, W) -> scalar (mean over images).
    Both are first average-pooled to `size` (the palette of regions, not of noise)."""
    ab, target_ab = pooled_ab_pair(ab, target_ab, size)
    angles = torch.arange(projections, device=ab.device, dtype=ab.dtype) * math.pi / projections
    directions = torch.stack((angles.cos(), angles.sin()), dim=1)          # (P, 2)
    a, b = (torch.einsum("pc,bcn->bpn", directions, x.flatten(2)).sort(dim=2).values
            for x in (ab, target_ab))                                   # (B, P, N) sorted
    return (a - b).abs().mean()


def diversity_loss(ab_a: torch.Tensor, ab_b: torch.Tensor, margin: float = 0.1,
                   size: int = 16, centred: bool = False) -> torch.Tensor:
    """Hinge on the mean absolute ab difference of two colorizations of the same images
    (B, 2, H, W), average-pooled to `size` (regions, not noise): per image
    max(0, margin - distance) / margin, so 1 for identical outputs and 0 once they differ
    by `margin` (0.1 of the ab/110 normalisation: 11 ab units); mean over images.
    `centred`: the image's mean a and b difference is subtracted first (a uniform cast
    scores 0)."""
    ab_a, ab_b = pooled_ab_pair(ab_a, ab_b, size)
    difference = ab_a - ab_b
    if centred:
        difference = difference - difference.mean(dim=(2, 3), keepdim=True)
    distance = difference.abs().mean(dim=(1, 2, 3))
    return (F.relu(margin - distance) / margin).mean()


def cast_loss(ab: torch.Tensor, target_ab: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Mean over images of the L1 between the opaque-pixel means of a and b of an output
    and of its ground truth: ab, target_ab (B, 2, H, W), alpha (B, 1, H, W) in [0, 1]."""
    if ab.shape != target_ab.shape or alpha.shape != (ab.size(0), 1, *ab.shape[2:]):
        raise ValueError(f"expected (B, 2, H, W) ab maps and a (B, 1, H, W) alpha, got "
                         f"{tuple(ab.shape)}, {tuple(target_ab.shape)}, {tuple(alpha.shape)}")
    opaque = alpha.sum(dim=(2, 3)).clamp(min=1e-6)                      # (B, 1)
    mean_difference = ((ab - target_ab) * alpha).sum(dim=(2, 3)) / opaque   # (B, 2)
    return mean_difference.abs().mean()


class ColourRarity:
    """Per-pixel weights that make rare (saturated) colours count as much as common ones.

    A loss averaged over pixels is dominated by the many near-gray pixels of photos, so a
    regressor learns that gray is always a safe answer. As in class-rebalanced colorization
    (Zhang et al. 2016), each ground-truth pixel is weighted by the inverse of how often its
    colour occurs in the training set: ab is binned on a grid of `bin_size` units, the bin
    frequencies p are smoothed by a Gaussian (sigma 5 ab units), mixed with a uniform
    distribution over the occupied bins (lambda 0.5) and w = 1 / mix, normalised so that
    E_p[w] = 1 (the loss keeps its scale).
    """

    BIN_SIZE = 10.0
    RANGE = 110.0  # the model's ab/110 normalisation

    def __init__(self, weights: torch.Tensor):
        self.weights = weights  # (n, n) over the ab grid, a-major

    @property
    def bins(self) -> int:
        return self.weights.size(0)

    @classmethod
    def from_ab(cls, ab_norm: torch.Tensor, mix: float = 0.5, sigma: float = 5.0) -> "ColourRarity":
        """ab_norm (N, 2) ground-truth colours (ab/110) of the training set."""
        n = int(2 * cls.RANGE / cls.BIN_SIZE)
        index = cls._bin_index(ab_norm, n)
        p = torch.bincount(index, minlength=n * n).double().view(n, n)
        p /= p.sum()
        radius = 2
        x = torch.arange(-radius, radius + 1, dtype=torch.float64) * cls.BIN_SIZE
        kernel = torch.exp(-x ** 2 / (2 * sigma ** 2))
        kernel /= kernel.sum()
        smooth = F.conv2d(p[None, None], (kernel[:, None] * kernel[None, :])[None, None],
                          padding=radius)[0, 0]
        occupied = smooth > 0
        uniform = occupied.double() / occupied.sum()
        w = torch.where(occupied, 1.0 / ((1 - mix) * smooth + mix * uniform), torch.zeros_like(p))
        w /= (w * p).sum()
        return cls(w.float())

    @classmethod
    def _bin_index(cls, ab_norm: torch.Tensor, n: int) -> torch.Tensor:
        cells = ((ab_norm * cls.RANGE + cls.RANGE) / cls.BIN_SIZE).long().clamp(0, n - 1)
        return cells[..., 0] * n + cells[..., 1]

    def __call__(self, ab_norm: torch.Tensor) -> torch.Tensor:
        """(B, 2, H, W) ground-truth ab/110 -> (B, 1, H, W) weights."""
        index = self._bin_index(ab_norm.movedim(1, -1), self.bins)
        return self.weights.to(ab_norm.device).flatten()[index][:, None]
