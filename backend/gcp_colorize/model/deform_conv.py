"""Modulated deformable convolution (DCNv2) in plain PyTorch.

Semantics of `torchvision.ops.deform_conv2d` (what the official code runs): output
pixel (h, w), kernel tap k = (i, j) samples the input bilinearly at
(h - pad + i + dy_k, w - pad + j + dx_k), zeros outside the map, times the tap's mask,
then the taps are contracted with the kernel. The 2K offset channels are read as
(dy_0, dx_0, dy_1, dx_1, ...), taps row-major over the kernel.

Formulation: one `grid_sample` gathers all K taps at once -> (B, C, K, H*W), which is
scaled by the mask and contracted with the (O, C*K) kernel in one matmul.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def modulated_deform_conv2d(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
                            weight: torch.Tensor, bias: torch.Tensor | None,
                            padding: int) -> torch.Tensor:
    """x (B, C, H, W), offset (B, 2K, Ho, Wo), mask (B, K, Ho, Wo), weight (O, C, kh, kw)
    with K = kh*kw, stride 1, dilation 1 -> (B, O, Ho, Wo), Ho = H + 2 pad - kh + 1."""
    b, c, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    taps = kh * kw
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    if offset.shape != (b, 2 * taps, ho, wo) or mask.shape != (b, taps, ho, wo):
        raise ValueError(f"offset {tuple(offset.shape)} / mask {tuple(mask.shape)} do not "
                         f"fit a {kh}x{kw} kernel on a {ho}x{wo} output")
    offset = offset.view(b, taps, 2, ho, wo)
    # Sampling positions in input pixels: output position - pad + tap position + offset.
    tap_y, tap_x = torch.meshgrid(torch.arange(kh, device=x.device, dtype=x.dtype),
                                  torch.arange(kw, device=x.device, dtype=x.dtype),
                                  indexing="ij")
    rows = torch.arange(ho, device=x.device, dtype=x.dtype) - padding
    cols = torch.arange(wo, device=x.device, dtype=x.dtype) - padding
    y = tap_y.reshape(taps, 1, 1) + rows.view(1, ho, 1) + offset[:, :, 0]   # (B, K, Ho, Wo)
    x_pos = tap_x.reshape(taps, 1, 1) + cols.view(1, 1, wo) + offset[:, :, 1]
    # grid_sample's align_corners=False maps pixel p to (2p + 1) / size - 1.
    grid = torch.stack(((2 * x_pos + 1) / w - 1, (2 * y + 1) / h - 1), dim=-1)
    sampled = F.grid_sample(x, grid.view(b, taps * ho, wo, 2), mode="bilinear",
                            padding_mode="zeros", align_corners=False)      # (B, C, K*Ho, Wo)
    sampled = sampled.view(b, c, taps, ho * wo)
    mask = mask.reshape(b, 1, taps, ho * wo)
    if torch.is_grad_enabled() and (sampled.requires_grad or mask.requires_grad):
        sampled = sampled * mask
    else:
        sampled.mul_(mask)  # the 9x gathered copy is the big tensor; do not duplicate it
    out = weight.reshape(out_channels, c * taps) @ sampled.view(b, c * taps, ho * wo)
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    return out.view(b, out_channels, ho, wo)


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
        o1, o2, mask_logits = torch.chunk(self.conv_offset(feat), 3, dim=1)
        offset = torch.cat((o1, o2), dim=1)
        return modulated_deform_conv2d(x, offset, torch.sigmoid(mask_logits), self.weight,
                                       self.bias, self.padding)
