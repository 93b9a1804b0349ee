"""Winograd F(2x2, 3x3) convolution against direct convolution in float64."""

import pytest
import torch
import torch.nn.functional as F

from gcp_colorize.model import winograd


def wide_case(seed, batch=2, channels=(128, 136), size=(34, 36)):
    torch.manual_seed(seed)
    c_in, c_out = channels
    x = torch.randn(batch, c_in, *size).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c_out, c_in, 3, 3) / (9 * c_in) ** 0.5
    return x, weight, torch.randn(c_out)


@pytest.mark.parametrize("padding, with_bias", [(1, True), (0, True), (1, False)])
def test_matches_direct_convolution_where_it_is_used(padding, with_bias):
    x, weight, bias = wide_case(0)
    bias = bias if with_bias else None
    with torch.no_grad():
        assert winograd._worthwhile(x, weight, padding)
        out = winograd.conv2d(x, weight, bias, padding)
    exact = F.conv2d(x.double(), weight.double(), None if bias is None else bias.double(),
                     padding=padding)
    assert out.shape == exact.shape
    assert out.is_contiguous(memory_format=torch.channels_last)
    # fp32 rounding level, like the direct fp32 convolution.
    assert (out.double() - exact).abs().max() < 2e-5


def test_several_bands_of_tile_rows(monkeypatch):
    x, weight, bias = wide_case(1, batch=1)
    monkeypatch.setattr(winograd, "BAND_BYTES", 1)  # one tile row per band
    with torch.no_grad():
        out = winograd.conv2d(x, weight, bias, 1)
    assert torch.allclose(out, F.conv2d(x, weight, bias, padding=1), atol=2e-5)


@pytest.mark.parametrize("case", ["narrow", "small map", "odd size", "grad", "float64"])
def test_other_cases_use_direct_convolution(case):
    x, weight, bias = wide_case(2)
    if case == "narrow":
        weight = weight[:64]
    elif case == "small map":
        x = x[..., :16, :16]
    elif case == "odd size":
        x = x[..., :33, :35]
    elif case == "float64":
        x, weight = x.double(), weight.double()
    with torch.no_grad():
        assert not winograd._worthwhile(x, weight, 1) or case == "grad"
    if case == "grad":
        weight.requires_grad_()
        out = winograd.conv2d(x, weight, None, 1)
        out.sum().backward()  # autograd takes the direct path
        assert weight.grad is not None
    else:
        with torch.no_grad():
            assert torch.equal(winograd.conv2d(x, weight, None, 1), F.conv2d(x, weight, padding=1))


def test_conv2d_module_is_a_drop_in_for_nn_conv2d():
    plain = torch.nn.Conv2d(128, 128, 3, padding=1)
    fast = winograd.Conv2d(128, 128, 3, padding=1)
    fast.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(1, 128, 32, 32)
    with torch.no_grad():
        assert torch.allclose(fast(x), plain(x), atol=2e-5)
    strided = winograd.Conv2d(128, 128, 3, stride=2, padding=1)
    strided.load_state_dict(plain.state_dict())
    with torch.no_grad():
        assert torch.equal(strided(x), F.conv2d(x, plain.weight, plain.bias, stride=2, padding=1))


def test_disabled_switch_forces_direct_convolution(monkeypatch):
    x, weight, bias = wide_case(3)
    monkeypatch.setattr(winograd, "ENABLED", False)
    with torch.no_grad():
        assert not winograd._worthwhile(x, weight, 1)
