"""Pixel conversions and the full-resolution part of colorization.

- ``decode`` / ``encode``: protocol pixel images (any layout, dtype, stride) <-> float sRGB
  in [0, 1] plus the untouched alpha channel.
- ``fit_square`` / ``crop_placed``: the model works on an N x N square; the image is
  resized (aspect kept) so its long side is N minus a margin on each side and mirrored
  into the rest of the square, never stretched. The model output is cropped back with the
  same placement. The margin keeps the trained networks' border effects (a few pixels of
  extra, often magenta chroma along the square's edges) off the image.
- ``guide_coefficients`` / ``chroma_at``: the model's low-resolution chroma is brought to
  full resolution with a fast guided filter (He & Sun 2015) whose guide is the
  full-resolution lightness, so colour edges land on the object edges of the original.
- ``lab_to_rgb_in_gamut``: joins the original CIELAB L with predicted a*b*; out-of-gamut
  colours are desaturated at constant L and hue (never clipped per channel, which would
  change L). So the output's L equals the input's up to the rounding of the output dtype.
- ``blend_selection``: a soft selection mask mixes chroma at constant L.

Tensors are channel-first float32 on any device; numpy arrays are (H, W, C). Work at full
resolution goes through row bands of BAND_PIXELS pixels: a 64-megapixel image never needs
more than a few full-size float arrays, and each band's temporaries stay in the CPU cache.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator

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
GAMUT_STEPS = 10     # bisection steps on chroma: within 0.1% of the largest chroma that fits
BAND_PIXELS = 1 << 18
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


def fit_square(image: torch.Tensor, size: int, margin: int = 0) -> tuple[torch.Tensor, Placement]:
    """(B, C, H, W) -> (B, C, size, size): resize so the long side is ``size - 2 * margin``
    (aspect kept), then mirror-pad all round; returns the placement for ``crop_placed``."""
    if not 0 <= 2 * margin < size:
        raise ValueError(f"margin {margin} leaves no room in a {size}-pixel square")
    height, width = image.shape[-2:]
    scale = (size - 2 * margin) / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    scaled = F.interpolate(image, size=(new_h, new_w), mode="bilinear", align_corners=False,
                           antialias=scale < 1)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    rows = _mirror_index(new_h, top, size - new_h - top, image.device)
    cols = _mirror_index(new_w, left, size - new_w - left, image.device)
    return scaled[..., rows, :][..., cols], Placement(size, new_h, new_w, top, left)


def border_margin(size: int) -> int:
    """The margin ``fit_square`` leaves for a model of native size ``size``: 1/32 of it
    (4 px at 128). Measured with the default weights: it hides their border band (5 px at
    128) and costs the dev set 0.1 dB PSNR and 0.47 KID x1000 over crops; 1/16 cost 0.35 dB
    and 1.8 FID over crops, as the image itself gets fewer of the model's pixels."""
    return size // 32


def crop_placed(square: torch.Tensor, placement: Placement) -> torch.Tensor:
    """(B, C, size, size) -> (B, C, h, w): the part of the square that holds the image."""
    p = placement
    return square[..., p.top:p.top + p.height, p.left:p.left + p.width]


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, windows clipped at the border."""
    return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


def guide_coefficients(chroma: torch.Tensor, guide: torch.Tensor, radius: int = GUIDE_RADIUS,
                       eps: float = GUIDE_EPS) -> torch.Tensor:
    """The guided filter fitted at model resolution.

    chroma (B, 2, h, w) a*b*, guide (1, 1, h, w) CIELAB L at the same resolution ->
    (B, 4, h, w): slope (2) and offset (2) of a*b* as a linear function of L/100 around
    each pixel, averaged over the windows that cover it. ``chroma_at`` applies them to the
    sharp full-resolution L."""
    radius = min(radius, max(0, min(chroma.shape[-2:]) // 2))
    guide = guide / 100.0
    mean_guide = _box(guide, radius)
    var_guide = _box(guide * guide, radius) - mean_guide * mean_guide
    mean_chroma = _box(chroma, radius)
    cov = _box(guide * chroma, radius) - mean_guide * mean_chroma
    slope = cov / (var_guide + eps)
    offset = mean_chroma - slope * mean_guide
    return torch.cat([_box(slope, radius), _box(offset, radius)], 1)


def chroma_at(coefficients: torch.Tensor, lightness: torch.Tensor, rows: slice, height: int) -> torch.Tensor:
    """Full-resolution a*b* for some rows of the image.

    coefficients (B, 4, h, w) from ``guide_coefficients``; lightness (1, 1, R, W): CIELAB L
    of the image rows ``rows`` (R of them) of an image ``height`` rows high. The
    coefficients are sampled bilinearly exactly as F.interpolate(align_corners=False)
    would upsample them to (height, W). Returns (B, 2, R, W)."""
    width = lightness.shape[-1]
    ys = (2 * torch.arange(rows.start, rows.stop, device=lightness.device) + 1) / height - 1
    xs = (2 * torch.arange(width, device=lightness.device) + 1) / width - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)[None].float()  # (1, R, W, 2) as (x, y)
    sampled = F.grid_sample(coefficients, grid.expand(coefficients.shape[0], -1, -1, -1), mode="bilinear",
                            padding_mode="border", align_corners=False)
    return sampled[:, :2] * (lightness / 100.0) + sampled[:, 2:]


def row_bands(height: int, width: int) -> Iterator[slice]:
    """Consecutive row ranges of about BAND_PIXELS pixels each."""
    rows = max(1, BAND_PIXELS // width)
    for top in range(0, height, rows):
        yield slice(top, min(height, top + rows))


def lightness(rgb: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """(H, W, 3) sRGB in [0, 1] -> (H, W) float32 CIELAB L."""
    out = np.empty(rgb.shape[:2], np.float32)
    for rows in row_bands(*out.shape):
        out[rows] = rgb_to_lab(to_tensor(rgb[rows], device))[0, 0].cpu().numpy()
    return out


def colorized_rgb(lightness: np.ndarray, coefficients: torch.Tensor) -> np.ndarray:
    """(H, W) CIELAB L of the original and (1, 4, h, w) guide coefficients -> (H, W, 3)
    sRGB with exactly that L and the guided full-resolution chroma (see module doc)."""
    height, width = lightness.shape
    out = np.empty((height, width, 3), np.float32)
    for rows in row_bands(height, width):
        band = torch.from_numpy(lightness[rows]).to(coefficients.device)[None, None]
        out[rows] = to_numpy(lab_to_rgb_in_gamut(band, chroma_at(coefficients, band, rows, height)))
    return out


def lab_to_rgb_in_gamut(lightness: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """lightness (B, 1, H, W) CIELAB L, chroma (B, 2, H, W) a*b* -> (B, 3, H, W) sRGB in
    [0, 1] with exactly this L: where a*b* fall outside sRGB they are scaled down (same
    hue) to the largest chroma that fits (L with zero chroma always fits). A table of the
    gamut boundary places most of them; bisection settles the few it leaves outside."""
    batch, _, height, width = chroma.shape
    # All pixels as one (1, 3, N, 1) column, so the out-of-gamut ones can be picked out.
    pixels = torch.cat([lightness.expand(batch, 1, height, width), chroma], 1).transpose(0, 1).reshape(1, 3, -1, 1)
    linear = lab_to_linear_rgb(pixels)
    outside = ~_in_gamut(linear)
    if outside.any():
        light, ab = pixels[:, :1, outside], pixels[:, 1:, outside]  # (1, 1, K, 1), (1, 2, K, 1)
        ab = ab * _table_chroma_scale(light, ab)
        fitted = lab_to_linear_rgb(torch.cat([light, ab], 1))
        still = ~_in_gamut(fitted)
        if still.any():
            light_still, ab_still = light[:, :, still], ab[:, :, still]
            low = torch.zeros_like(light_still)
            high = torch.ones_like(light_still)
            for _ in range(GAMUT_STEPS):
                middle = (low + high) / 2
                fits = _in_gamut(lab_to_linear_rgb(torch.cat([light_still, ab_still * middle], 1))).view_as(middle)
                low = torch.where(fits, middle, low)
                high = torch.where(fits, high, middle)
            fitted[:, :, still] = lab_to_linear_rgb(torch.cat([light_still, ab_still * low], 1))
        linear[:, :, outside] = fitted
    rgb = linear_to_srgb(linear.clamp(0.0, 1.0)).clamp(0.0, 1.0)  # the gamma's epsilon can pass 1
    return rgb.reshape(3, batch, height, width).transpose(0, 1)


def _table_chroma_scale(lightness: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """lightness (1, 1, K, 1), chroma (1, 2, K, 1) -> (1, 1, K, 1) factor <= 1 that brings
    a*b* within the tabulated sRGB gamut boundary."""
    table = _gamut_table(str(chroma.device))                             # (1, 1, L, hue)
    hue = torch.atan2(chroma[:, 1], chroma[:, 0]) / torch.pi             # (1, K, 1) in [-1, 1]
    grid = torch.stack([hue, lightness[:, 0] / 50 - 1], -1)              # (1, K, 1, 2) as (x, y)
    limit = F.grid_sample(table, grid, mode="bilinear", padding_mode="border", align_corners=True)
    size = chroma.norm(dim=1, keepdim=True)
    return torch.where(size > limit, limit / size.clamp_min(1e-6), torch.ones_like(size))


@functools.lru_cache(maxsize=4)
def _gamut_table(device: str) -> torch.Tensor:
    """(1, 1, 101, 181) largest in-gamut chroma for L = 0, 1, ..., 100 and hue -180, -178,
    ..., 180 degrees, lowered to the minimum of each 3x3 neighbourhood so that
    interpolating it stays within the true boundary at the surrounding grid points."""
    light = torch.linspace(0, 100, 101, device=device)[:, None].expand(101, 181)
    hue = torch.linspace(-torch.pi, torch.pi, 181, device=device)[None].expand(101, 181)
    direction = torch.stack([hue.cos(), hue.sin()])                      # (2, 101, 181)
    low, high = torch.zeros_like(light), torch.full_like(light, 256.0)  # sRGB chroma stays below 256
    for _ in range(16):
        middle = (low + high) / 2
        linear = lab_to_linear_rgb(torch.cat([light[None], direction * middle], 0)[None])
        fits = ((linear >= 0) & (linear <= 1)).all(1)[0]
        low, high = torch.where(fits, middle, low), torch.where(fits, high, middle)
    return -F.max_pool2d(-low[None, None], 3, stride=1, padding=1)


def _in_gamut(linear: torch.Tensor) -> torch.Tensor:
    """(1, 3, N, 1) linear RGB -> (N,) True where every channel is within [0, 1]
    (up to float error, so that neutral grays always count as inside)."""
    return ((linear >= -GAMUT_TOLERANCE) & (linear <= 1 + GAMUT_TOLERANCE)).all(1)[0, :, 0]


def blend_selection(original: np.ndarray, colorized: np.ndarray, mask: np.ndarray,
                    device: torch.device | str = "cpu") -> np.ndarray:
    """Mix chroma by a soft selection mask at the original's L.

    original, colorized: (H, W, 3) sRGB of equal L; mask: (H, W) in [0, 1]. Pixels with
    mask 0 are returned bit-for-bit from ``original``, mask 1 from ``colorized``."""
    out = np.empty_like(original)
    for rows in row_bands(*mask.shape):
        lab_original = rgb_to_lab(to_tensor(original[rows], device))
        lab_colorized = rgb_to_lab(to_tensor(colorized[rows], device))
        weight = torch.from_numpy(mask[rows]).to(device)[None, None]
        chroma = torch.lerp(lab_original[:, 1:], lab_colorized[:, 1:], weight)
        blended = to_numpy(lab_to_rgb_in_gamut(lab_original[:, :1], chroma))
        keep = mask[rows, :, None]
        out[rows] = np.where(keep <= 0.0, original[rows], np.where(keep >= 1.0, colorized[rows], blended))
    return out
