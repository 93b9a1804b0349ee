"""Modulated deformable convolution against a direct per-sample definition."""

import torch
import torch.nn.functional as F

from gcp_colorize.model.deform_conv import ModulatedDeformConv2d, modulated_deform_conv2d


def bilinear_zero_outside(image: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """image (C, H, W) at real (y, x); corners outside the map count as zero."""
    _, h, w = image.shape
    y0, x0 = int(torch.floor(torch.tensor(y))), int(torch.floor(torch.tensor(x)))
    out = torch.zeros(image.size(0), dtype=image.dtype)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                out += wy * wx * image[:, yy, xx]
    return out


def direct_deform_conv(x, offset, mask, weight, bias, padding):
    b, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    out = torch.zeros(b, o, ho, wo, dtype=x.dtype)
    for n in range(b):
        for i in range(ho):
            for j in range(wo):
                for k in range(kh * kw):
                    ki, kj = divmod(k, kw)
                    y = i - padding + ki + offset[n, 2 * k, i, j].item()
                    xx = j - padding + kj + offset[n, 2 * k + 1, i, j].item()
                    sample = bilinear_zero_outside(x[n], y, xx) * mask[n, k, i, j]
                    out[n, :, i, j] += weight[:, :, ki, kj] @ sample
        out[n] += bias.view(-1, 1, 1)
    return out


def test_matches_the_direct_definition_with_samples_outside_the_map():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    offset = torch.randn(2, 18, 5, 4, dtype=torch.float64) * 2.0
    mask = torch.rand(2, 9, 5, 4, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    expected = direct_deform_conv(x, offset, mask, weight, bias, padding=1)
    actual = modulated_deform_conv2d(x, offset, mask, weight, bias, padding=1)
    assert torch.allclose(actual, expected, atol=1e-10)


def test_zero_offsets_and_unit_mask_is_a_plain_convolution():
    torch.manual_seed(1)
    x = torch.randn(1, 4, 6, 7)
    weight, bias = torch.randn(5, 4, 3, 3), torch.randn(5)
    out = modulated_deform_conv2d(x, torch.zeros(1, 18, 6, 7), torch.ones(1, 9, 6, 7),
                                  weight, bias, padding=1)
    assert torch.allclose(out, F.conv2d(x, weight, bias, padding=1), atol=1e-5)


def test_gradients_reach_input_offsets_mask_and_weights():
    torch.manual_seed(2)
    args = [torch.randn(1, 2, 4, 3, dtype=torch.float64, requires_grad=True),
            (torch.randn(1, 18, 4, 3, dtype=torch.float64) * 0.7).requires_grad_(),
            torch.rand(1, 9, 4, 3, dtype=torch.float64, requires_grad=True),
            torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True),
            torch.randn(3, dtype=torch.float64, requires_grad=True)]
    assert torch.autograd.gradcheck(lambda *a: modulated_deform_conv2d(*a, padding=1), args)


def test_module_starts_as_a_half_masked_convolution():
    dcn = ModulatedDeformConv2d(3, 2)
    x, feat = torch.randn(1, 3, 5, 5), torch.randn(1, 3, 5, 5)
    expected = F.conv2d(x, dcn.weight * 0.5, dcn.bias, padding=1)
    assert torch.allclose(dcn(x, feat), expected, atol=1e-6)


def test_sampling_positions_stay_exact_under_bfloat16_autocast():
    """Pixel indices of a 70x70 map do not fit bfloat16's 8-bit mantissa: the sampling
    positions must be computed in fp32 whatever the autocast dtype."""
    torch.manual_seed(3)
    dcn = ModulatedDeformConv2d(4, 4)
    torch.nn.init.normal_(dcn.conv_offset.weight, std=0.3)
    x, feat = torch.randn(1, 4, 70, 70), torch.randn(1, 4, 70, 70)
    with torch.no_grad():
        exact = dcn(x, feat)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            reduced = dcn(x, feat)
    assert reduced.dtype == torch.bfloat16
    assert (reduced.float() - exact).abs().max() < 0.1 * exact.abs().max()
