"""Sample pictures written during training: rows of images in one PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def save_grid(rows: list[torch.Tensor], path: Path, gap: int = 2) -> None:
    """rows: tensors (N, 3, H, W) in [0, 1] (same H, W; N may differ) -> one PNG, a row each."""
    if not rows:
        raise ValueError("no rows to draw")
    h, w = rows[0].shape[-2:]
    columns = max(r.shape[0] for r in rows)
    canvas = np.full((len(rows) * (h + gap) - gap, columns * (w + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        pixels = (row.detach().float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        for j, image in enumerate(pixels):
            canvas[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)
