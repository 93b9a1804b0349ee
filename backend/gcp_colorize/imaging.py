"""Pixel conversions and the full-resolution part of colorization.

- ``decode`` / ``encode``: protocol pixel images (any layout, dtype, stride) <-> float sRGB
  in [0, 1] plus the untouched alpha channel.
- ``fit_square`` / ``crop_placed``: the model works on an N x N square; the image is
  resized (aspect kept) so its long side is N and mirrored into the rest of the square,
  never stretched. The model output is cropped back with the same placement.
- ``guided_upsample``: the model's low-resolution chroma is brought to full resolution
  with a fast guided filter (He & Sun 2015) whose guide is the full-resolution lightness,
  so colour edges land on the object edges of the original.
- ``lab_to_rgb_in_gamut``: joins the original CIELAB L with predicted a*b*; out-of-gamut
  colours are desaturated at constant L and hue (never clipped per channel, which would
  change L). So the output's L equals the input's up to the rounding of the output dtype.
- ``blend_selection``: a soft selection mask mixes chroma at constant L.

Tensors are channel-first float32 on any device; numpy arrays are (H, W, C).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .core.protocol import PixelImage
from .model.lab import lab_to_linear_rgb, linear_to_srgb, rgb_to_lab

NUMPY_DTYPES = {"uint8": np.dtype("<u1"), "uint16": np.dtype("<u2"),
                "float16": np.dtype("<f2"), "float32": np.dtype("<f4")}
INTEGER_MAX = {"uint8": 255.0, "uint16": 65535.0}
# Which stored channel holds R, G, B, and which holds alpha, per layout.
COLOR_CHANNELS = {"RGBA": (0, 1, 2), "BGRA": (2, 1, 0), "RGB": (0, 1, 2), "GRAY": (0, 0, 0), "GRAYA": (0, 0, 0)}
ALPHA_CHANNEL = {"RGBA": 3, "BGRA": 3, "GRAYA": 1}
# Colour cannot be stored in one channel: gray layouts come back as their colour layout.
OUTPUT_LAYOUT = {"GRAY": "RGB", "GRAYA": "RGBA"}

GUIDE_RADIUS = 2     # box radius of the guided filter, in model-resolution pixels
GUIDE_EPS = 1e-4     # regularisation for the guide normalised to [0, 1]: smaller = sharper edges
GAMUT_STEPS = 14     # bisection steps on chroma: 2**-14 of the chroma is below any output rounding
GAMUT_TOLERANCE = 1e-5


class NonFiniteInput(ValueError):
    """Float pixels contain NaN or infinity."""


@dataclass
class DecodedImage:
    rgb: np.ndarray           # (H, W, 3) float32 sRGB in [0, 1]; gray layouts repeat their channel
    alpha: np.ndarray | None  # (H, W) view of the stored alpha, in the image's own dtype
    layout: str
    dtype: str


def pixel_array(image: PixelImage) -> np.ndarray:
    """(H, W, C) numpy view of the image's buffer in its own dtype (no copy)."""
    dtype = NUMPY_DTYPES[image.dtype]
    return np.ndarray((image.height, image.width, image.channels), dtype=dtype, buffer=image.data,
                      strides=(image.stride, image.channels * dtype.itemsize, dtype.itemsize))


def decode(image: PixelImage) -> DecodedImage:
    """Float sRGB of any layout/dtype; raises NonFiniteInput for NaN/inf in float pixels.
    Float values are sRGB-encoded; values outside [0, 1] are clipped."""
    stored = pixel_array(image)
    rgb = np.empty((image.height, image.width, 3), np.float32)
    scale = 1.0 / INTEGER_MAX.get(image.dtype, 1.0)
    for channel, source in enumerate(COLOR_CHANNELS[image.layout]):
        np.multiply(stored[..., source], scale, out=rgb[..., channel], casting="unsafe")
    alpha_index = ALPHA_CHANNEL.get(image.layout)
    alpha = stored[..., alpha_index] if alpha_index is not None else None
    if image.dtype not in INTEGER_MAX:
        if not np.isfinite(rgb).all() or (alpha is not None and not np.isfinite(alpha).all()):
            raise NonFiniteInput("the image contains NaN or infinite values")
        np.clip(rgb, 0.0, 1.0, out=rgb)
    return DecodedImage(rgb, alpha, image.layout, image.dtype)


def decode_mask(mask: PixelImage) -> np.ndarray:
    """(H, W) float32 selection weights in [0, 1] from a GRAY image of any dtype."""
    weights = np.multiply(pixel_array(mask)[..., 0], 1.0 / INTEGER_MAX.get(mask.dtype, 1.0), dtype=np.float32)
    if not np.isfinite(weights).all():
        raise NonFiniteInput("the selection mask contains NaN or infinite values")
    return np.clip(weights, 0.0, 1.0, out=weights)


def encode(rgb: np.ndarray, like: DecodedImage) -> PixelImage:
    """(H, W, 3) float sRGB in [0, 1] -> a compact PixelImage in ``like``'s dtype and layout
    (gray layouts become RGB/RGBA) with ``like``'s alpha copied unchanged."""
    layout = OUTPUT_LAYOUT.get(like.layout, like.layout)
    height, width = rgb.shape[:2]
    stored = np.empty((height, width, len(layout)), NUMPY_DTYPES[like.dtype])
    limit = INTEGER_MAX.get(like.dtype)
    for channel, target in enumerate(COLOR_CHANNELS[layout]):
        value = rgb[..., channel]
        stored[..., target] = np.rint(value * limit) if limit is not None else value
    if like.alpha is not None:
        stored[..., ALPHA_CHANNEL[layout]] = like.alpha
    return PixelImage(memoryview(stored), width, height, layout, like.dtype)


# -- tensors ---------------------------------------------------------------------------------

def to_tensor(rgb: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) numpy -> (1, 3, H, W) float32 tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1).unsqueeze(0).float()


def to_numpy(rgb: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor -> (H, W, 3) float32 numpy."""
    return rgb[0].permute(1, 2, 0).contiguous().cpu().numpy()


@dataclass(frozen=True)
class Placement:
    """Where the image lies inside the model's size x size square."""

    size: int
    height: int  # scaled image size inside the square
    width: int
    top: int
    left: int


def _mirror_index(length: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    """Indices that extend 0..length-1 by mirroring (edge repeated) any number of times."""
    index = torch.arange(-before, length + after, device=device) % (2 * length)
    return torch.where(index >= length, 2 * length - 1 - index, index)


def fit_square(image: torch.Tensor, size: int) -> tuple[torch.Tensor, Placement]:
    """(B, C, H, W) -> (B, C, size, size): resize so the long side is ``size`` (aspect
    kept), then mirror-pad the short side; returns the placement for ``crop_placed``."""
    height, width = image.shape[-2:]
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    scaled = F.interpolate(image, size=(new_h, new_w), mode="bilinear", align_corners=False,
                           antialias=scale < 1)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    rows = _mirror_index(new_h, top, size - new_h - top, image.device)
    cols = _mirror_index(new_w, left, size - new_w - left, image.device)
    return scaled[..., rows, :][..., cols], Placement(size, new_h, new_w, top, left)


def crop_placed(square: torch.Tensor, placement: Placement) -> torch.Tensor:
    """(B, C, size, size) -> (B, C, h, w): the part of the square that holds the image."""
    p = placement
    return square[..., p.top:p.top + p.height, p.left:p.left + p.width]


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, windows clipped at the border."""
    return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


def guided_upsample(chroma: torch.Tensor, guide_low: torch.Tensor, guide_full: torch.Tensor,
                    radius: int = GUIDE_RADIUS, eps: float = GUIDE_EPS) -> torch.Tensor:
    """Fast guided filter upsampling.

    chroma (B, 2, h, w): low-resolution a*b*; guide_low (1, 1, h, w) and guide_full
    (1, 1, H, W): CIELAB L at both resolutions. Returns (B, 2, H, W). Locally chroma is
    modelled as a linear function of L, fitted at low resolution; the coefficients are
    upsampled smoothly and applied to the sharp full-resolution L."""
    radius = min(radius, max(0, min(chroma.shape[-2:]) // 2))
    guide = guide_low / 100.0
    mean_guide = _box(guide, radius)
    var_guide = _box(guide * guide, radius) - mean_guide * mean_guide
    mean_chroma = _box(chroma, radius)
    cov = _box(guide * chroma, radius) - mean_guide * mean_chroma
    slope = cov / (var_guide + eps)
    offset = mean_chroma - slope * mean_guide
    size = guide_full.shape[-2:]
    slope = F.interpolate(_box(slope, radius), size=size, mode="bilinear", align_corners=False)
    offset = F.interpolate(_box(offset, radius), size=size, mode="bilinear", align_corners=False)
    return slope * (guide_full / 100.0) + offset


def lab_to_rgb_in_gamut(lightness: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """lightness (B, 1, H, W) CIELAB L, chroma (B, 2, H, W) a*b* -> (B, 3, H, W) sRGB in
    [0, 1] with exactly this L: where a*b* fall outside sRGB they are scaled down (same
    hue) to the largest chroma that fits (L with zero chroma always fits)."""
    batch, _, height, width = chroma.shape
    # All pixels as one (1, 3, N, 1) column, so the out-of-gamut ones can be picked out.
    lab = torch.cat([lightness.expand(batch, 1, height, width), chroma], 1)
    pixels = lab.transpose(0, 1).reshape(1, 3, -1, 1)
    linear = lab_to_linear_rgb(pixels)
    outside = ~_in_gamut(linear)
    if outside.any():
        light, ab = pixels[:, :1, outside], pixels[:, 1:, outside]  # (1, 1, K, 1), (1, 2, K, 1)
        low = torch.zeros_like(light)
        high = torch.ones_like(light)
        for _ in range(GAMUT_STEPS):
            middle = (low + high) / 2
            fits = _in_gamut(lab_to_linear_rgb(torch.cat([light, ab * middle], 1))).view_as(middle)
            low = torch.where(fits, middle, low)
            high = torch.where(fits, high, middle)
        linear[:, :, outside] = lab_to_linear_rgb(torch.cat([light, ab * low], 1))
    rgb = linear_to_srgb(linear.clamp(0.0, 1.0)).clamp(0.0, 1.0)  # the gamma's epsilon can pass 1
    return rgb.reshape(3, batch, height, width).transpose(0, 1)


def _in_gamut(linear: torch.Tensor) -> torch.Tensor:
    """(1, 3, N, 1) linear RGB -> (N,) True where every channel is within [0, 1]
    (up to float error, so that neutral grays always count as inside)."""
    return ((linear >= -GAMUT_TOLERANCE) & (linear <= 1 + GAMUT_TOLERANCE)).all(1)[0, :, 0]


def lightness(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB -> (B, 1, H, W) CIELAB L."""
    return rgb_to_lab(rgb)[:, :1]


def blend_selection(original: np.ndarray, colorized: np.ndarray, mask: np.ndarray,
                    device: torch.device | str = "cpu") -> np.ndarray:
    """Mix chroma by a soft selection mask at the original's L.

    original, colorized: (H, W, 3) sRGB of equal L; mask: (H, W) in [0, 1]. Pixels with
    mask 0 are returned bit-for-bit from ``original``, mask 1 from ``colorized``."""
    lab_original = rgb_to_lab(to_tensor(original, device))
    lab_colorized = rgb_to_lab(to_tensor(colorized, device))
    weight = torch.from_numpy(mask).to(device)[None, None]
    chroma = torch.lerp(lab_original[:, 1:], lab_colorized[:, 1:], weight)
    blended = to_numpy(lab_to_rgb_in_gamut(lab_original[:, :1], chroma))
    keep = mask[..., None]
    return np.where(keep <= 0.0, original, np.where(keep >= 1.0, colorized, blended))

