"""Modulated deformable convolution (DCNv2) in plain PyTorch.

Semantics of `torchvision.ops.deform_conv2d` (what the official code runs): output
pixel (h, w), kernel tap k = (i, j) samples the input bilinearly at
(h - pad + i + dy_k, w - pad + j + dx_k), zeros outside the map, times the tap's mask,
then the taps are contracted with the kernel. The 2K offset channels are read as
(dy_0, dx_0, dy_1, dx_1, ...), taps row-major over the kernel.

Formulation: bilinear sampling acts on every channel alike, so it commutes with the
kernel's channel mixing. First one GEMM projects every input pixel through all K taps'
kernels -> (B*H*W, K, O); then each output pixel is one `embedding_bag` sum over 36 rows
(K taps x 4 bilinear corners), weighted by bilinear weight x mask. Same multiply-adds as
"gather then GEMM", but the GEMM reads the input once and the gather writes O values per
output pixel instead of K*C (measured 2-3x faster on CPU than grid_sample + GEMM).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

CORNERS = 4


def _sampling_rows(offset: torch.Tensor, mask: torch.Tensor, kernel: tuple[int, int],
                   padding: int, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of the (B*H*W*K, O) projected input that each output pixel sums, and their
    weights: offset (B, 2K, Ho, Wo), mask (B, K, Ho, Wo) -> indices and weights, both
    (B*Ho*Wo, K*4). A corner outside the map gets weight 0 (its index is clamped)."""
    b, _, ho, wo = offset.shape
    kh, kw = kernel
    h, w = size
    taps = kh * kw
    # Positions in at least fp32: pixel indices are computed in floating point.
    dtype, device = torch.promote_types(offset.dtype, torch.float32), offset.device
    offset = offset.to(dtype).reshape(b, taps, 2, ho, wo).permute(0, 3, 4, 1, 2)  # (B, Ho, Wo, K, 2)
    tap_y, tap_x = torch.meshgrid(torch.arange(kh, device=device, dtype=dtype),
                                  torch.arange(kw, device=device, dtype=dtype), indexing="ij")
    rows = torch.arange(ho, device=device, dtype=dtype) - padding
    cols = torch.arange(wo, device=device, dtype=dtype) - padding
    y = rows.view(ho, 1, 1) + tap_y.reshape(1, 1, taps) + offset[..., 0]    # (B, Ho, Wo, K)
    x = cols.view(1, wo, 1) + tap_x.reshape(1, 1, taps) + offset[..., 1]
    y0, x0 = y.floor(), x.floor()
    fy, fx = y - y0, x - x0
    # Per axis: (low, high) neighbour and its weight, zero when it is outside the map.
    ys = torch.stack((y0, y0 + 1), dim=-1)                                  # (B, Ho, Wo, K, 2)
    xs = torch.stack((x0, x0 + 1), dim=-1)
    wy = torch.stack((1 - fy, fy), dim=-1).masked_fill_((ys < 0) | (ys > h - 1), 0)
    wx = torch.stack((1 - fx, fx), dim=-1).masked_fill_((xs < 0) | (xs > w - 1), 0)
    wy.mul_(mask.permute(0, 2, 3, 1).unsqueeze(-1))
    weights = wy.unsqueeze(-1) * wx.unsqueeze(-2)                           # (B, Ho, Wo, K, 2, 2)
    pixel = (ys.clamp_(0, h - 1).mul_(w).unsqueeze(-1)
             + xs.clamp_(0, w - 1).unsqueeze(-2)).long()                    # exact below 2^24
    first_row = (torch.arange(b, device=device).view(b, 1, 1, 1, 1, 1) * (h * w * taps)
                 + torch.arange(taps, device=device).view(1, 1, 1, taps, 1, 1))
    index = pixel.mul_(taps).add_(first_row)                                # (B, Ho, Wo, K, 2, 2)
    return index.view(b * ho * wo, taps * CORNERS), weights.reshape(b * ho * wo, taps * CORNERS)


def modulated_deform_conv2d(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
                            weight: torch.Tensor, bias: torch.Tensor | None,
                            padding: int) -> torch.Tensor:
    """x (B, C, H, W), offset (B, 2K, Ho, Wo), mask (B, K, Ho, Wo), weight (O, C, kh, kw)
    with K = kh*kw, stride 1, dilation 1 -> (B, O, Ho, Wo) in channels-last memory,
    Ho = H + 2 pad - kh + 1."""
    b, c, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    taps = kh * kw
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    if offset.shape != (b, 2 * taps, ho, wo) or mask.shape != (b, taps, ho, wo):
        raise ValueError(f"offset {tuple(offset.shape)} / mask {tuple(mask.shape)} do not "
                         f"fit a {kh}x{kw} kernel on a {ho}x{wo} output")
    # (B*H*W, C) @ (C, K*O): every input pixel through every tap's kernel (a free view of
    # x when it is channels-last).
    pixels = x.permute(0, 2, 3, 1).reshape(b * h * w, c)
    projected = pixels @ weight.permute(1, 2, 3, 0).reshape(c, taps * out_channels)
    index, weights = _sampling_rows(offset, mask, (kh, kw), padding, (h, w))
    out = F.embedding_bag(index, projected.view(b * h * w * taps, out_channels), mode="sum",
                          per_sample_weights=weights.to(projected.dtype))  # (B*Ho*Wo, O)
    if bias is not None:
        out = out + bias if torch.is_grad_enabled() else out.add_(bias)
    return out.view(b, ho, wo, out_channels).permute(0, 3, 1, 2)


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 whose offsets and masks come from a separate feature map (the official
    "DCNv2Pack"): conv_offset(feat) -> 3K channels = o1, o2, mask logits;
    offsets = cat(o1, o2), mask = sigmoid(logits)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 padding: int = 1):
        super().__init__()
        self.padding = padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.conv_offset = nn.Conv2d(in_channels, 3 * kernel_size * kernel_size,
                                     kernel_size, padding=padding)
        bound = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        # Start as a plain convolution: zero offsets, mask 0.5 everywhere.
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, H, W) is sampled; feat (B, C_in, H, W) gives offsets and masks."""
        taps = self.weight.size(2) * self.weight.size(3)
        # cat(o1, o2) is the first 2K channels in order: a view, no copy.
        offset_and_logits = self.conv_offset(feat)
        offset, mask_logits = offset_and_logits.split((2 * taps, taps), dim=1)
        return modulated_deform_conv2d(x, offset, torch.sigmoid(mask_logits), self.weight,
                                       self.bias, self.padding)
