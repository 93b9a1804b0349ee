"""How good is a stage-0 colour prior? Numbers to compare checkpoints and runs by.

A GAN's losses do not say whether its samples got better, and stage 0 has no validation
loss. This draws one G sample per training photo (fixed views, the photo's gray class, a
fixed seed) and reports:
- FID and KID of the samples against the photos (Inception pool3, as `gcp-colorize eval`);
- colourfulness of the samples as a fraction of the photos' (a prior of browns and grays
  cannot lend vivid colour);
- z-spread: mean CIEDE2000 between two samples of the same class with independent z, on
  16 x 16 thumbnails (colour layout, not texture): the Colorizer's alternatives can only
  move as far as G's colours move with z.
Scores of one count and seed are comparable; FID over a few hundred samples is biased
upwards, so compare it only at equal count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..evaluation.inception import InceptionFeatures, fid, kid
from ..evaluation.metrics import colourfulness, mean_ciede2000
from ..model.classifier import ImageNetClassifier
from ..model.config import GCPConfig
from ..model.lab import rgb_to_model_input
from .photos import gray_classes, sample_crops
from .stage0_prior import load_prior

THUMBNAIL = 16


def _hwc(images: torch.Tensor) -> list[np.ndarray]:
    """(N, 3, H, W) in [0, 1] -> N arrays (H, W, 3) float64."""
    return list(images.clamp(0, 1).permute(0, 2, 3, 1).double().cpu().numpy())


def z_spread(first: torch.Tensor, second: torch.Tensor) -> float:
    """Mean CIEDE2000 between paired images (N, 3, H, W) in [0, 1] at THUMBNAIL px."""
    a, b = (_hwc(F.adaptive_avg_pool2d(x, THUMBNAIL)) for x in (first, second))
    return float(np.mean([mean_ciede2000(x, y) for x, y in zip(a, b)]))


def mean_colourfulness(images: torch.Tensor) -> float:
    return float(np.mean([colourfulness(x) for x in _hwc(images)]))


@torch.no_grad()
def score_prior(run_dir: Path, config: GCPConfig, device: torch.device, photos, *,
                count: int = 256, seed: int = 0, log=print) -> dict:
    """Scores of the stage-0 run in `run_dir` against the first `count` items of `photos`
    (a training set; its epoch-0 views). Returns step, count, fid, kid, colourfulness
    (samples / photos) and z_spread (CIEDE2000)."""
    real = sample_crops(photos, count).to(device)
    if real.size(0) < 2:
        raise ValueError(f"need at least 2 photos to score a prior, got {real.size(0)}")
    classes = gray_classes(ImageNetClassifier(device), rgb_to_model_input(real),
                           config.n_classes)
    generator, _, step = load_prior(run_dir, config, device, classes)
    log(f"step {step}: drawing 2 x {len(classes)} samples")
    rng = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(2):
        z = torch.randn(len(classes), config.dim_z, generator=rng).to(device)
        drawn = [generator(z[i:i + 16], generator.shared(classes[i:i + 16]))[0]
                 for i in range(0, len(classes), 16)]
        samples.append((torch.cat(drawn) + 1) / 2)
    log("Inception features of the photos and the samples")
    inception = InceptionFeatures(device)
    real_features, fake_features = inception(real), inception(samples[0])
    return {"step": step, "count": len(classes),
            "fid": fid(fake_features, real_features),
            "kid": kid(fake_features, real_features),
            "colourfulness": mean_colourfulness(samples[0]) / mean_colourfulness(real),
            "z_spread": z_spread(*samples)}
