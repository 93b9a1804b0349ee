"""Per-image colorization metrics on float sRGB images (H, W, 3) in [0, 1].

PSNR and SSIM (Wang et al. 2004: Gaussian window 11 / sigma 1.5, K1 0.01, K2 0.03, 'valid'
filtering, mean over R, G, B), mean CIEDE2000 (Sharma, Wu & Dalal 2005), colourfulness
(Hasler & Suesstrunk 2003, on 0-255 RGB) and luminance drift (mean |L_out - L_in|).
CIELAB is the model's own conversion (`model/lab.py`), so drift measures what the model
preserves, and the neutral gray input has exactly the photo's L.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..model.lab import lab_to_rgb, rgb_to_lab

SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    for x in (a, b):
        if x.ndim != 3 or x.shape[2] != 3:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {x.shape}")
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} vs {b.shape}")


def _batch(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) -> (1, 3, H, W) float64."""
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float64)).permute(2, 0, 1)[None]


def lab(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) sRGB -> (H, W, 3) CIELAB, float64."""
    return rgb_to_lab(_batch(rgb))[0].permute(1, 2, 0).numpy()


def neutral_gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) sRGB -> (H, W, 3) float32 gray (R = G = B) with the same CIELAB L."""
    lightness = rgb_to_lab(_batch(rgb))[:, :1]
    gray = lab_to_rgb(torch.cat([lightness, torch.zeros_like(lightness).expand(-1, 2, -1, -1)], 1))
    return gray.mean(1)[0, ..., None].expand(-1, -1, 3).numpy().astype(np.float32)


def psnr(output: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over RGB in [0, 1] (inf for identical images)."""
    _check_pair(output, reference)
    mse = float(np.mean((output.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def ssim(output: np.ndarray, reference: np.ndarray) -> float:
    """Structural similarity, mean over R, G, B; images must be at least 11 x 11."""
    _check_pair(output, reference)
    if min(output.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW}")
    x = _batch(output).transpose(0, 1)     # (3, 1, H, W): channels as a batch
    y = _batch(reference).transpose(0, 1)
    t = torch.arange(SSIM_WINDOW, dtype=torch.float64) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-t ** 2 / (2 * SSIM_SIGMA ** 2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :])[None, None]

    def blur(z):  # 'valid' Gaussian filtering: (3, 1, H, W) -> (3, 1, H - 10, W - 10)
        return F.conv2d(z, window)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
    index = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(index.mean())


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (kL = kC = kH = 1) of Lab arrays (..., 3) -> (...)."""
    lab1, lab2 = np.asarray(lab1, np.float64), np.asarray(lab2, np.float64)
    l1, a1, b1 = np.moveaxis(lab1, -1, 0)
    l2, a2, b2 = np.moveaxis(lab2, -1, 0)
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean ** 7 / (c_mean ** 7 + 25.0 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360   # arctan2(0, 0) = 0, as the formula asks
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    chroma_product = c1p * c2p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chroma_product == 0, 0.0, dh)
    d_l, d_c = l2 - l1, c2p - c1p
    d_h = 2 * np.sqrt(chroma_product) * np.sin(np.radians(dh / 2))
    l_mean, cp_mean = (l1 + l2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = np.where(np.abs(h1p - h2p) <= 180, h_sum / 2,
                      np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2))
    h_mean = np.where(chroma_product == 0, h_sum, h_mean)
    t = (1 - 0.17 * np.cos(np.radians(h_mean - 30)) + 0.24 * np.cos(np.radians(2 * h_mean))
         + 0.32 * np.cos(np.radians(3 * h_mean + 6)) - 0.20 * np.cos(np.radians(4 * h_mean - 63)))
    d_theta = 30 * np.exp(-(((h_mean - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(cp_mean ** 7 / (cp_mean ** 7 + 25.0 ** 7))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * cp_mean
    s_h = 1 + 0.015 * cp_mean * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2
                   + r_t * (d_c / s_c) * (d_h / s_h))


def mean_ciede2000(output: np.ndarray, reference: np.ndarray) -> float:
    """Mean per-pixel CIEDE2000 between two sRGB images."""
    _check_pair(output, reference)
    return float(ciede2000(lab(output), lab(reference)).mean())


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) M: sigma_rgyb + 0.3 mu_rgyb on 0-255 RGB (0 for gray)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {rgb.shape}")
    r, g, b = np.moveaxis(rgb.astype(np.float64) * 255, -1, 0)
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def luminance_drift(output: np.ndarray, source: np.ndarray) -> float:
    """Mean |L_output - L_source| in CIELAB L units."""
    _check_pair(output, source)
    return float(np.abs(lab(output)[..., 0] - lab(source)[..., 0]).mean())
