"""Losses measured on deep features: perceptual and contextual.

The paper uses VGG19 features; no VGG weights can be had offline here, so the feature
network is the pretrained EfficientNet-Lite0 classifier (`model/classifier.py`), frozen.
Its stage outputs play the roles of VGG's relu layers: stage 2 (stride 4), stage 3
(stride 8) and stage 5 (stride 16) stand for relu3_2, relu4_2 and relu5_2.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

# Classifier stage -> weight. Perceptual: one deep stage (the paper's relu5_2).
PERCEPTUAL_STAGES = {5: 1.0}
# Contextual: three depths (the paper's relu3_2 / relu4_2 / relu5_2 roles), deeper heavier.
CONTEXTUAL_STAGES = {2: 2.0, 3: 4.0, 5: 8.0}


class FeatureLosses:
    """Perceptual and contextual losses on the frozen classifier's feature maps.

    Images are RGB in [0, 1], (B, 3, H, W); gradients flow to the images only."""

    def __init__(self, classifier):
        self.classifier = classifier  # model.classifier.ImageNetClassifier
        self.last_stage = max(max(PERCEPTUAL_STAGES), max(CONTEXTUAL_STAGES))

    def features(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        return self.classifier.feature_maps(rgb, last_stage=self.last_stage)

    @staticmethod
    def perceptual(out_feats: list[torch.Tensor], target_feats: list[torch.Tensor],
                   stages: Mapping[int, float] = PERCEPTUAL_STAGES) -> torch.Tensor:
        """Mean squared feature difference (paper eq. 6, L2 on relu5_2)."""
        return sum(w * F.mse_loss(out_feats[s], target_feats[s].detach()) for s, w in stages.items())

    @staticmethod
    def contextual(out_feats: list[torch.Tensor], ref_feats: list[torch.Tensor],
                   stages: Mapping[int, float] = CONTEXTUAL_STAGES,
                   bandwidth: float = 0.1) -> torch.Tensor:
        """Weighted sum over stages of the contextual loss (paper eq. 7)."""
        total = sum(stages.values())
        return sum(w * contextual_loss(out_feats[s], ref_feats[s].detach(), bandwidth)
                   for s, w in stages.items()) / total


def contextual_loss(x: torch.Tensor, y: torch.Tensor, bandwidth: float = 0.1) -> torch.Tensor:
    """Contextual loss (Mechrez et al. 2018) between feature maps x, y (B, C, H, W).

    Each feature of y looks for its most similar feature of x anywhere in the image (no
    spatial alignment needed): -log of the mean over y of the best normalised affinity.
    """
    if x.shape[:2] != y.shape[:2]:
        raise ValueError(f"feature maps differ in batch or channels: {x.shape} vs {y.shape}")
    mu = y.mean(dim=(0, 2, 3), keepdim=True)  # centre both on the target's mean feature
    xn = F.normalize((x - mu).flatten(2), dim=1)  # (B, C, Nx)
    yn = F.normalize((y - mu).flatten(2), dim=1)  # (B, C, Ny)
    distance = 1.0 - torch.bmm(xn.transpose(1, 2), yn)  # (B, Nx, Ny) cosine distance
    relative = distance / (distance.min(dim=2, keepdim=True).values + 1e-5)
    affinity = torch.softmax((1.0 - relative) / bandwidth, dim=2)  # normalised over y per x
    best = affinity.max(dim=1).values.mean(dim=1)  # (B,) for each y the best x, averaged
    return -torch.log(best + 1e-5).mean()
