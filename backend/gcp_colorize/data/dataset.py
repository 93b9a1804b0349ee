"""`TrainingPhotos`: the prepared training set as a torch Dataset.

Training items are random square crops (scale jitter, horizontal flips), deterministic
given (seed, epoch, index); validation items are fixed centre views. Each item is a dict
    rgb    (3, size, size) float in [0, 1] (cut-out pixels composited on white)
    alpha  (1, size, size) float in [0, 1]: 1 where the photo is opaque, so losses can
           ignore the white fill of cut-outs
    label  int, the photo's top-1 ImageNet pseudo-label
    index  int, the item's index
which the default collate turns into a batch of tensors.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import views
from .manifest import DEFAULT_CACHE, prepared_photos

SPLITS = ("train", "val")


class TrainingPhotos(Dataset):
    def __init__(self, cache: Path = DEFAULT_CACHE, split: str = "train", size: int = 128,
                 seed: int = 0, min_scale: float = 0.5, min_opaque: float = 0.8):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if size < 8:
            raise ValueError(f"size must be at least 8, got {size}")
        if not 0 < min_scale <= 1:
            raise ValueError(f"min_scale must be in (0, 1], got {min_scale}")
        self.cache = Path(cache).expanduser()
        self.records = prepared_photos(self.cache, split)
        self.split, self.size, self.seed = split, size, seed
        self.min_scale, self.min_opaque = min_scale, min_opaque
        self.epoch = 0
        self._pixels: dict[int, np.ndarray] = {}  # decoded photos, per worker process

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Changes the training crops; call before each epoch's DataLoader iteration."""
        self.epoch = epoch

    @property
    def labels(self) -> list[int]:
        return [r.labels[0][0] for r in self.records]

    def _image(self, index: int) -> torch.Tensor:
        if index not in self._pixels:
            self._pixels[index] = views.load_pixels(self.cache / self.records[index].file)
        return views.to_tensor(self._pixels[index])

    def _generator(self, index: int) -> torch.Generator:
        key = f"{self.seed}/{self.epoch}/{self.records[index].name}".encode()
        seed = int.from_bytes(hashlib.sha256(key).digest()[:8], "little")
        return torch.Generator().manual_seed(seed)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self.records):
            raise IndexError(f"index {index} out of range for {len(self.records)} photos")
        image = self._image(index)
        if self.split == "train":
            view = views.random_square(image, self.size, self._generator(index),
                                       self.min_scale, self.min_opaque)
        else:
            view = views.centre_square(image, self.size)
        rgb, alpha = views.split_alpha(view)
        return {"rgb": rgb, "alpha": alpha, "label": self.records[index].labels[0][0],
                "index": index}
