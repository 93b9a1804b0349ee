"""Fixed random crops, so that a few dozen photos give enough samples for FID/KID.

The boxes depend only on (seed, image name, image size): the ground truth, the gray input
and every colorization of one photo are cut at the same places.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F


def crop_boxes(name: str, height: int, width: int, size: int, count: int,
               seed: int = 0) -> list[tuple[int, int, int]]:
    """`count` boxes (top, left, side), side = min(size, height, width)."""
    side = min(size, height, width)
    key = hashlib.sha256(f"{seed}/{name}/{height}x{width}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(key[:8], "little"))
    tops = rng.integers(0, height - side + 1, count)
    lefts = rng.integers(0, width - side + 1, count)
    return [(int(t), int(l), side) for t, l in zip(tops, lefts)]


def cut(rgb: np.ndarray, boxes: list[tuple[int, int, int]], size: int) -> torch.Tensor:
    """(H, W, 3) image -> (len(boxes), 3, size, size) crops. A box smaller than `size` (a
    photo shorter than the crop) is scaled up, so that the crops of every photo stack."""
    image = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
    crops = torch.stack([image[:, t:t + s, l:l + s] for t, l, s in boxes])
    if crops.shape[-1] == size:
        return crops
    return F.interpolate(crops, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
