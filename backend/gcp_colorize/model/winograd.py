"""3x3 convolutions as Winograd F(2x2, 3x3) for wide layers at CPU inference.

A stride-1 3x3 convolution makes each 2x2 output tile from a 4x4 input tile. After the
transforms below, that is 16 independent channel contractions, one (tiles, C) @ (C, O)
GEMM per tile position: 16 multiply-adds per tile and channel pair instead of 4 x 9
(2.25x fewer). The transforms cost a few passes over the input and the output, so it only
pays for wide layers (`_worthwhile`: measured on a 2-core AVX2 host, e.g. 384 -> 512 at
64x64 1.7x faster, 640 -> 80 or 96 channels at 256x256 slower). The transform constants
are 0, +-1 and +-1/2, so results stay at fp32 rounding level (~1e-6 relative).

`conv2d` picks Winograd or `F.conv2d`; `Conv2d` is an `nn.Conv2d` that calls it.
Autograd, CUDA (cuDNN picks its own algorithms) and other shapes use `F.conv2d`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Wide enough (channels in and out) and large enough (output pixels) to gain.
MIN_CHANNELS = 128
MIN_OUTPUT_PIXELS = 32 * 32
# Size of the transformed tiles handled at once (see `conv2d`).
BAND_BYTES = 16 << 20
# Off: always F.conv2d (benchmarks/bench_model.py compares both and counts direct FLOPs).
ENABLED = True


def _kernel_transform(t: torch.Tensor, dim: int) -> torch.Tensor:
    """G g along `dim` (size 3 -> 4): g0, (g0 + g1 + g2)/2, (g0 - g1 + g2)/2, g2."""
    g0, g1, g2 = t.unbind(dim)
    half_sum = (g0 + g2) / 2
    return torch.stack((g0, half_sum + g1 / 2, half_sum - g1 / 2, g2), dim)


def winograd_kernel(weight: torch.Tensor) -> torch.Tensor:
    """(O, C, 3, 3) -> (16, C, O): the kernel in the Winograd domain, G w G^T per tap."""
    out_channels, in_channels = weight.shape[:2]
    u = _kernel_transform(_kernel_transform(weight.permute(2, 3, 1, 0), 0), 1)
    return u.reshape(16, in_channels, out_channels)


def _input_tiles(padded: torch.Tensor) -> torch.Tensor:
    """B^T d B of every 4x4 input tile (stride 2): (B, C, 2th+2, 2tw+2) -> (16, B*th*tw, C)."""
    b, c, hp, wp = padded.shape
    th, tw = (hp - 2) // 2, (wp - 2) // 2
    pixels = padded.permute(0, 2, 3, 1)                       # (B, Hp, Wp, C), free if CL
    # Row i of every tile: (B, th, Wp, C) strided views; B^T along the tile rows
    # (d0 - d2, d1 + d2, d2 - d1, d1 - d3) on whole pixel rows at once.
    d = [pixels[:, i:i + 2 * th:2] for i in range(4)]
    mixed = (d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3])
    tiles = padded.new_empty(4, 4, b, th, tw, c)
    for i, r in enumerate(mixed):  # ... then along the tile columns, into place
        col = [r[:, :, j:j + 2 * tw:2] for j in range(4)]     # (B, th, tw, C) each
        torch.sub(col[0], col[2], out=tiles[i, 0])
        torch.add(col[1], col[2], out=tiles[i, 1])
        torch.sub(col[2], col[1], out=tiles[i, 2])
        torch.sub(col[1], col[3], out=tiles[i, 3])
    return tiles.view(16, b * th * tw, c)


def _output_tiles(products: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor) -> None:
    """A^T m A of every tile: products (16, B*th*tw, O) -> out (B, 2th, 2tw, O)."""
    b, h, w, o = out.shape
    m = products.view(4, 4, b, h // 2, w // 2, o)
    if bias is not None:
        m[1, 1] += bias  # A^T e11 A is all ones: a bias at (1, 1) reaches all four outputs
    # A^T along the tile rows: m0 + m1 + m2, m1 - m2 - m3.
    mixed = (m[0] + m[1] + m[2], m[1] - m[2] - m[3])           # (4, B, th, tw, O) each
    for i, r in enumerate(mixed):  # ... and along the tile columns, into place
        torch.add(r[0] + r[1], r[2], out=out[:, i::2, 0::2])
        torch.sub(r[1] - r[2], r[3], out=out[:, i::2, 1::2])


def _worthwhile(x: torch.Tensor, weight: torch.Tensor, padding: int) -> bool:
    h, w = x.size(2) + 2 * padding - 2, x.size(3) + 2 * padding - 2
    return (ENABLED and x.device.type == "cpu" and not torch.is_grad_enabled() and x.dim() == 4
            and weight.shape[2:] == (3, 3) and x.dtype == torch.float32
            and min(weight.shape[:2]) >= MIN_CHANNELS and h * w >= MIN_OUTPUT_PIXELS
            and h % 2 == 0 and w % 2 == 0)


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           padding: int = 0) -> torch.Tensor:
    """F.conv2d(x, weight, bias, padding=padding) with stride 1 (zero padding): Winograd
    where it pays (see module doc). x (B, C, H, W) -> (B, O, H + 2p - kh + 1, ...)."""
    if not _worthwhile(x, weight, padding):
        return F.conv2d(x, weight, bias, padding=padding)
    padded = F.pad(x, (padding,) * 4) if padding else x
    b, c, hp, wp = padded.shape
    o = weight.size(0)
    kernel = winograd_kernel(weight)
    out = x.new_empty(b, hp - 2, wp - 2, o)
    # Bands of tile rows: the transformed tiles of a band stay in cache for their GEMM,
    # and small buffers are reused by the allocator instead of being mapped afresh.
    tile_rows, tile_cols = (hp - 2) // 2, (wp - 2) // 2
    band = max(1, BAND_BYTES // (16 * b * tile_cols * max(c, o) * x.element_size()))
    for top in range(0, tile_rows, band):
        rows = min(band, tile_rows - top)
        tiles = _input_tiles(padded[:, :, 2 * top:2 * (top + rows) + 2])
        _output_tiles(torch.bmm(tiles, kernel), bias, out[:, 2 * top:2 * (top + rows)])
    return out.permute(0, 3, 1, 2)


class Conv2d(nn.Conv2d):
    """nn.Conv2d (same parameters and state dict) whose stride-1, zero-padded 3x3 case
    goes through `conv2d`."""

    def _conv_forward(self, x, weight, bias):
        if (self.kernel_size == (3, 3) and self.stride == (1, 1) and self.dilation == (1, 1)
                and self.groups == 1 and self.padding_mode == "zeros"
                and isinstance(self.padding, tuple) and self.padding[0] == self.padding[1]):
            return conv2d(x, weight, bias, self.padding[0])
        return super()._conv_forward(x, weight, bias)
