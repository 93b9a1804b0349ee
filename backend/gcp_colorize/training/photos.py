"""Training photos as the networks see them: sRGB crops -> CIELAB model ranges + class.

Every stage reads the prepared training set (`gcp-colorize data prepare`) through
`data.dataset.TrainingPhotos` (random square crops and flips at the native resolution)
and turns a collated batch into a `PhotoBatch`. The class that conditions E and G is,
as in the Colorizer, the classifier's top-1 on the NEUTRAL GRAY picture of the crop
(colour must not decide a class the Colorizer will never see); the photo's own
pseudo-label stays available.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.dataset import TrainingPhotos
from ..data.manifest import DEFAULT_CACHE
from ..model.lab import neutral_gray, normalize_lab, rgb_to_lab


@dataclass
class PhotoBatch:
    rgb: torch.Tensor     # (B, 3, R, R) sRGB in [0, 1]
    alpha: torch.Tensor   # (B, 1, R, R) 1 where the photo is opaque (cut-outs: 0 on the fill)
    x_l: torch.Tensor     # (B, 1, R, R) L/50 - 1
    ab: torch.Tensor      # (B, 2, R, R) ab/110
    label: torch.Tensor   # (B,) the photo's pseudo-label (classifier on the colour photo)

    @property
    def rgb_signed(self) -> torch.Tensor:
        """(B, 3, R, R) in [-1, 1], the range of G's images and D's input."""
        return self.rgb * 2 - 1


def training_set(resolution: int, seed: int, cache: Path = DEFAULT_CACHE,
                 split: str = "train") -> TrainingPhotos:
    return TrainingPhotos(cache, split=split, size=resolution, seed=seed)


def stage_photo_sets(resolution: int, seed: int, dataset=None, sample_set=None) -> tuple:
    """A stage's training photos and the validation photos of its sample pictures: the
    prepared sets unless the caller (a test) passes its own."""
    if dataset is None:
        dataset = training_set(resolution, seed)
    if sample_set is None:
        sample_set = training_set(resolution, seed, split="val")
    return dataset, sample_set


def photo_batch(batch: dict, device: torch.device) -> PhotoBatch:
    rgb = batch["rgb"].to(device)
    x_l, ab = normalize_lab(rgb_to_lab(rgb))
    return PhotoBatch(rgb, batch["alpha"].to(device), x_l, ab, batch["label"].to(device))


@torch.no_grad()
def gray_classes(classifier, x_l: torch.Tensor, n_classes: int = 1000) -> torch.Tensor:
    """x_l (B, 1, H, W) -> (B,) int64: the classifier's top-1 on the neutral gray picture.
    Always in fp32 (`ImageNetClassifier.read`), so a bf16-autocast step labels its photos
    as an fp32 one would."""
    return top_classes(classifier.read(neutral_gray(x_l.float()))[0], n_classes).to(x_l.device)


def top_classes(logits: torch.Tensor, n_classes: int = 1000) -> torch.Tensor:
    """(B, 1000) logits -> (B,) top-1 classes, wrapped into n_classes for test configs with
    fewer classes (as the Colorizer does)."""
    return logits.argmax(dim=1) % n_classes


def sample_crops(dataset, count: int = 8) -> torch.Tensor:
    """The first `count` items' RGB (fixed views of the validation split), (N, 3, R, R)."""
    return torch.stack([dataset[i]["rgb"] for i in range(min(count, len(dataset)))])
