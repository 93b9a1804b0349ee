"""Views of a stored photo: decoding, compositing cut-outs, centre and random square crops.

Stored photos are uint8 (H, W, 3) or (H, W, 4); views are float tensors in [0, 1].
Transparent pixels of cut-out photos are composited on white: isolated objects on a white
background are a real photo genre (and common in ImageNet), and white has no chroma, so it
teaches no false colour. Crops are chosen to be mostly opaque (see `random_square`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

BACKGROUND = 1.0  # white


def load_pixels(path: Path) -> np.ndarray:
    """A stored PNG -> uint8 (H, W, 3 or 4)."""
    with Image.open(path) as image:
        return np.array(image.convert("RGBA" if image.mode in ("RGBA", "LA", "PA") else "RGB"))


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float (C, H, W) in [0, 1]."""
    return torch.from_numpy(pixels).permute(2, 0, 1).float() / 255


def split_alpha(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, H, W) -> RGB composited on white (3, H, W) and alpha (1, H, W) (ones if opaque)."""
    if image.shape[0] == 3:
        return image, torch.ones_like(image[:1])
    rgb, alpha = image[:3], image[3:]
    return rgb * alpha + BACKGROUND * (1 - alpha), alpha


def resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, h, w) -> (C, size, size), antialiased when shrinking."""
    return F.interpolate(image[None], size=(size, size), mode="bilinear",
                         align_corners=False, antialias=True)[0].clamp(0, 1)


def centre_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """The centred square of side min(H, W), resized: (C, H, W) -> (C, size, size)."""
    _, h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return resize_square(image[:, top:top + side, left:left + side], size)


def random_square(image: torch.Tensor, size: int, generator: torch.Generator,
                  min_scale: float = 0.5, min_opaque: float = 0.8, tries: int = 8) -> torch.Tensor:
    """A random square crop with side in [min_scale, 1] x min(H, W), resized to size and
    flipped horizontally with probability 1/2: (C, H, W) -> (C, size, size).

    For a photo with alpha (C = 4), up to `tries` boxes are drawn and the first whose mean
    alpha reaches `min_opaque` is used, else the most opaque one."""
    _, h, w = image.shape
    short = min(h, w)
    best, best_opacity = None, -1.0
    for _ in range(tries if image.shape[0] == 4 else 1):
        u = torch.rand(4, generator=generator).tolist()
        side = max(1, round(short * (min_scale + (1 - min_scale) * u[0])))
        top = math.floor(u[1] * (h - side + 1))
        left = math.floor(u[2] * (w - side + 1))
        crop = image[:, top:top + side, left:left + side]
        opacity = float(crop[3].mean()) if image.shape[0] == 4 else 1.0
        if opacity > best_opacity:
            best, best_opacity, flip = crop, opacity, u[3] < 0.5
        if opacity >= min_opaque:
            break
    out = resize_square(best, size)
    return out.flip(-1) if flip else out
