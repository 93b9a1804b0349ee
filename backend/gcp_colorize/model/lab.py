"""sRGB <-> CIELAB (D65) exactly as the official GCP code computes it, and the model's
normalisation x_l = L/50 - 1, ab_norm = ab/110.

The official formulas carry small epsilons a textbook formula lacks: cube root of
(t + 1e-6), cube of (f + 1e-6), gamma 1.055 (rgb + 1e-6)^(1/2.4) - 0.055; linear RGB is
clipped to [0, 1] before the gamma. Tensors are (B, 3, H, W); constants follow the
input's dtype. The unused branch of each piecewise formula is clamped into its own
domain so that gradients stay finite.
"""

from __future__ import annotations

import torch

D65_WHITE = (0.950456, 1.0, 1.088754)
_EPSILON = 6.0 / 29.0
_SRGB_THRESHOLD = 0.04045
_LINEAR_THRESHOLD = 0.0031308
# Row vectors: xyz = rgb @ RGB_TO_XYZ, rgb = xyz @ XYZ_TO_RGB (the official matrices).
RGB_TO_XYZ = ((0.412453, 0.212671, 0.019334),
              (0.357580, 0.715160, 0.119193),
              (0.180423, 0.072169, 0.950227))
XYZ_TO_RGB = ((3.2404542, -0.9692660, 0.0556434),
              (-1.5371385, 1.8760108, -0.2040259),
              (-0.4985314, 0.0415560, 1.0572252))
_F_TO_LAB = ((0.0, 500.0, 0.0), (116.0, -500.0, 200.0), (0.0, 0.0, -200.0))
_LAB_TO_F = ((1 / 116.0, 1 / 116.0, 1 / 116.0), (1 / 500.0, 0.0, 0.0), (0.0, 0.0, -1 / 200.0))

L_SCALE, L_OFFSET, AB_SCALE = 50.0, 50.0, 110.0


def _mix(x: torch.Tensor, matrix) -> torch.Tensor:
    """Per pixel: row vector (channels of x) times a 3x3 matrix. (B, 3, H, W) -> same."""
    m = torch.tensor(matrix, dtype=x.dtype, device=x.device)
    return torch.einsum("bchw,cd->bdhw", x, m)


def _per_channel(values, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


def _check(x: torch.Tensor, what: str):
    if x.dim() != 4 or x.size(1) != 3:
        raise ValueError(f"{what} must be (B, 3, H, W), got {tuple(x.shape)}")


def rgb_to_lab(srgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIELAB (L in [0, 100])."""
    _check(srgb, "sRGB")
    linear = torch.where(srgb <= _SRGB_THRESHOLD, srgb / 12.92,
                         ((srgb.clamp(min=_SRGB_THRESHOLD) + 0.055) / 1.055) ** 2.4)
    xyz = _mix(linear, RGB_TO_XYZ) * _per_channel([1 / w for w in D65_WHITE], srgb)
    f = torch.where(xyz <= _EPSILON ** 3, xyz / (3 * _EPSILON ** 2) + 4.0 / 29.0,
                    (xyz.clamp(min=_EPSILON ** 3) + 1e-6) ** (1.0 / 3.0))
    return _mix(f, _F_TO_LAB) + _per_channel([-16.0, 0.0, 0.0], srgb)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIELAB -> sRGB in [0, 1] (out-of-gamut colours clipped in linear RGB)."""
    return linear_to_srgb(lab_to_linear_rgb(lab).clamp(0.0, 1.0))


def lab_to_linear_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIELAB -> linear RGB, not clipped: out-of-gamut colours leave [0, 1] (imaging.py
    maps them back into the gamut at constant L instead of clipping)."""
    _check(lab, "Lab")
    f = _mix(lab + _per_channel([16.0, 0.0, 0.0], lab), _LAB_TO_F)
    xyz = torch.where(f <= _EPSILON, 3 * _EPSILON ** 2 * (f - 4 / 29.0),
                      (f.clamp(min=_EPSILON) + 1e-6) ** 3)
    return _mix(xyz * _per_channel(D65_WHITE, lab), XYZ_TO_RGB)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Linear RGB in [0, 1] -> sRGB (the official gamma, with its epsilon)."""
    return torch.where(linear <= _LINEAR_THRESHOLD, linear * 12.92,
                       (linear.clamp(min=_LINEAR_THRESHOLD) + 1e-6) ** (1 / 2.4) * 1.055 - 0.055)


def normalize_lab(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lab (B, 3, H, W) -> x_l (B, 1, H, W) = L/50 - 1, ab_norm (B, 2, H, W) = ab/110."""
    return lab[:, :1] / L_SCALE - 1.0, lab[:, 1:] / AB_SCALE


def denormalize_lab(x_l: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalize_lab`: -> Lab (B, 3, H, W)."""
    return torch.cat((x_l * L_SCALE + L_OFFSET, ab_norm * AB_SCALE), dim=1)


def rgb_to_model_input(srgb: torch.Tensor) -> torch.Tensor:
    """sRGB (B, 3, H, W) in [0, 1] -> x_l (B, 1, H, W), what E, D and the colorization
    net read."""
    return normalize_lab(rgb_to_lab(srgb))[0]


def model_output_to_rgb(x_l: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """x_l (B, 1, H, W) and the network's ab_norm (B, 2, H, W) -> sRGB (B, 3, H, W)."""
    return lab_to_rgb(denormalize_lab(x_l, ab_norm))


def neutral_gray(x_l: torch.Tensor) -> torch.Tensor:
    """x_l (B, 1, H, W) -> the sRGB picture of that L with a = b = 0, (B, 3, H, W)."""
    return model_output_to_rgb(x_l, torch.zeros_like(x_l).expand(-1, 2, -1, -1))
