"""Train-mode behaviour of the BigGAN layers (the golden data covers eval mode)."""

import torch
import torch.nn.functional as F

from gcp_colorize.model import layers


def test_conditional_batch_norm_train_mode_uses_and_updates_batch_statistics():
    torch.manual_seed(0)
    bn = layers.ConditionalBatchNorm(4, 6, spectral_norm=True).train()
    x, y = torch.randn(3, 4, 5, 5) * 2 + 1, torch.randn(3, 6)
    out = bn(x, y)
    mean = x.mean(dim=(0, 2, 3))
    var = x.var(dim=(0, 2, 3), unbiased=False)
    normalized = (x - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + 1e-5)
    with torch.no_grad():  # sv0 holds the sigma of the step just taken
        gain = 1 + F.linear(y, bn.gain.weight / bn.gain.sv0)
        bias = F.linear(y, bn.bias.weight / bn.bias.sv0)
    expected = normalized * gain[:, :, None, None] + bias[:, :, None, None]
    assert torch.allclose(out, expected, atol=1e-4)
    assert torch.allclose(bn.stored_mean, 0.1 * mean, atol=1e-6)
    assert torch.allclose(bn.stored_var, 0.9 + 0.1 * x.var(dim=(0, 2, 3)), atol=1e-5)
    out.sum().backward()
    assert bn.gain.weight.grad is not None and bn.bias.weight.grad is not None


def test_eval_sigma_cache_follows_weight_changes():
    torch.manual_seed(1)
    conv = layers.SNConv2d(3, 4).eval()
    x = torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        first = conv(x)
        conv.weight.add_(torch.randn_like(conv.weight))
        changed = conv(x)
        expected = F.conv2d(x, conv.weight / conv.sigma(), conv.bias, padding=1)
    assert not torch.allclose(first, changed)
    assert torch.allclose(changed, expected, atol=1e-6)


def test_spectral_norm_gradient_in_eval_mode_includes_sigma():
    """With gradients recorded, eval mode differentiates through sigma (no cache)."""
    torch.manual_seed(2)
    linear = layers.SNLinear(5, 3).eval()
    x = torch.randn(4, 5)
    linear(x).square().sum().backward()
    u, v = linear.power_iteration()
    weight = linear.weight.detach().clone().requires_grad_()
    sigma = (v @ weight.t() @ u.t()).squeeze()
    F.linear(x, weight / sigma, linear.bias.detach()).square().sum().backward()
    assert torch.allclose(linear.weight.grad, weight.grad, atol=1e-6)


def test_train_mode_power_iteration_converges_to_the_spectral_norm():
    torch.manual_seed(3)
    linear = layers.SNLinear(8, 6).train()
    for _ in range(50):
        linear(torch.zeros(1, 8))
    assert torch.allclose(linear.sv0, torch.linalg.matrix_norm(linear.weight.detach(), 2),
                          rtol=1e-4)


def test_sigma_stays_fp32_under_a_bf16_autocast():
    """Training with --bf16: the power iteration would otherwise run in bf16 (~0.4% off)."""
    runs = []
    for bf16 in (False, True):
        torch.manual_seed(3)
        linear = layers.SNLinear(64, 48).train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for _ in range(20):
                sigma = linear.sigma()
        assert sigma.dtype == torch.float32
        runs.append((linear.u0, linear.sv0))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_gblock_and_dblock_train_with_autograd():
    torch.manual_seed(4)
    g = layers.GBlock(4, 2, 6, spectral_norm=True, resample="up").train()
    d = layers.DBlock(2, 4, preactivation=True, downsample=True).train()
    attention = layers.Attention(16, spectral_norm=True).train()
    h = g(torch.randn(2, 4, 4, 4), torch.randn(2, 6))
    assert h.shape == (2, 2, 8, 8)
    out = d(h)
    assert out.shape == (2, 4, 4, 4)
    out = attention(torch.cat([out] * 4, dim=1))
    out.sum().backward()
    grads = [p.grad for m in (g, d, attention) for p in m.parameters()]
    assert all(grad is not None for grad in grads)


def test_pooled_kernel_is_pool_after_convolution_also_for_odd_sizes():
    torch.manual_seed(5)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    kernel = layers.pooled_conv3x3_kernel(weight)
    for size in ((8, 6), (7, 9)):
        x = torch.randn(2, 3, *size, dtype=torch.float64)
        expected = F.avg_pool2d(F.conv2d(x, weight, padding=1), 2)
        assert torch.allclose(F.conv2d(x, kernel, stride=2, padding=1), expected, atol=1e-12)


def test_eval_cache_of_the_normalized_weight_is_dropped_in_train_mode():
    conv = layers.SNConv2d(3, 4).eval()
    with torch.no_grad():
        conv(torch.randn(1, 3, 4, 4))
    assert conv._normalized_cache is not None
    conv.train()(torch.randn(1, 3, 4, 4))
    assert conv._normalized_cache is None


def test_instance_norm_matches_torch_and_keeps_channels_last():
    torch.manual_seed(6)
    x = (torch.randn(2, 5, 6, 7) * 3 + 4).contiguous(memory_format=torch.channels_last)
    out = layers.instance_norm(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert (out.double() - F.instance_norm(x.double())).abs().max() < 2e-6
