"""Differentiable augmentation of the discriminator's inputs (the DiffAugment idea).

With a few hundred photos a GAN discriminator memorises the training set within a few
thousand steps and the generator's gradients collapse. Augmenting every image that D sees,
real and generated alike, with transforms that gradients pass through keeps D from
memorising while leaving the distribution that G must match unchanged. We use random
translation (up to 1/8 of the side, zero fill) and cutout (one zeroed rectangle of half
the side). Colour transforms (brightness, saturation, contrast, with the DiffAugment paper's
ranges) are optional: applied to real and generated images alike they leave the target
distribution unchanged in principle, but they also blur the colour statistics D judges,
and colour is what the prior must learn.
"""

from __future__ import annotations

import torch


def translate(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by a random whole number of pixels, zeros shifted in. (B,C,H,W) -> same."""
    b, _, h, w = x.shape
    max_dy, max_dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-max_dy, max_dy + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - dy  # source row per output row
    cols = torch.arange(w, device=x.device).view(1, 1, w) - dx
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).unsqueeze(1)
    flat = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).view(b, 1, h * w)
    shifted = x.flatten(2).gather(2, flat.expand(-1, x.shape[1], -1)).view_as(x)
    return shifted * inside


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one random rectangle of `ratio` times the sides per image. (B,C,H,W) -> same."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # box centres anywhere in the image: boxes near a border are clipped
    top = torch.randint(0, h + 1, (b, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w + 1, (b, 1, 1), device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def colour_jitter(x: torch.Tensor) -> torch.Tensor:
    """Per image: brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5),
    on signed images in [-1, 1]. (B,C,H,W) -> same."""
    b = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * (high - low) + low
    x = x + uniform(-0.5, 0.5)
    grey = x.mean(1, keepdim=True)
    x = (x - grey) * uniform(0.0, 2.0) + grey
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * uniform(0.5, 1.5) + mean


def diff_augment(x: torch.Tensor, colour: bool = False) -> torch.Tensor:
    """The augmentation applied to every discriminator input during GAN training."""
    if x.ndim != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")
    return cutout(translate(colour_jitter(x) if colour else x))

