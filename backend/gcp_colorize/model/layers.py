"""BigGAN building blocks with the official parameter names and numerics.

Spectral norm (one power-iteration step from the stored `u0`; eval keeps `u0`/`sv0`,
train updates them as BigGAN does), SN conv/linear/embedding, class-conditional batch
norm ("ccbn") and the output batch norm ("bn") with stored statistics, self-attention,
and the residual blocks of G/E (`GBlock`) and D (`DBlock`); also the instance norm of the
correspondence and colorization nets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd


class SpectralNorm:
    """Mixin: `normalized_weight()` = weight / sigma, sigma from one power-iteration step.

    The module must have `weight`; the mixin adds buffers `u0` (1, out) and `sv0` (1,).
    Train mode writes the new u into `u0` and sigma into `sv0` (BigGAN); eval mode reads
    only `u0`. Eval mode also caches the normalised weight while weight and `u0` are
    unchanged (it is a pure function of them; recomputing it was ~10% of G's time), unless
    gradients to the weight are being recorded (and for inference-mode tensors, which
    have no version counter). The cache costs one extra copy of the weight.
    """

    def _init_spectral_norm(self, num_outputs: int, eps: float):
        self.sn_eps = eps
        self.register_buffer("u0", torch.randn(1, num_outputs))
        self.register_buffer("sv0", torch.ones(1))
        self._normalized_cache = None

    def _weight_matrix(self) -> torch.Tensor:
        return self.weight.reshape(self.weight.size(0), -1)  # copies a channels-last kernel

    def power_iteration(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self._weight_matrix()
        with torch.no_grad():
            v = F.normalize(self.u0 @ w, eps=self.sn_eps)
            u = F.normalize(v @ w.t(), eps=self.sn_eps)
        return u, v

    def sigma(self) -> torch.Tensor:
        """Spectral-norm estimate, shape (): v W^T u^T (differentiable in W). Always in
        fp32: under a bf16 autocast (training with --bf16) the estimate would be off by
        up to ~0.4% per step, and the stored u would drift with it."""
        with torch.autocast(self.weight.device.type, enabled=False):
            u, v = self.power_iteration()
            if self.training:
                self.u0.copy_(u)
            sigma = ((v @ self._weight_matrix().t()) @ u.t()).squeeze()
        if self.training:
            self.sv0.copy_(sigma.detach())
        return sigma

    def normalized_weight(self) -> torch.Tensor:
        recording = torch.is_grad_enabled() and self.weight.requires_grad
        if self.training or recording or self.weight.is_inference():
            self._normalized_cache = None  # stale once training moves the weight
            return self.weight / self.sigma()
        key = (self.weight.data_ptr(), self.weight._version, self.u0.data_ptr(),
               self.u0._version, self.weight.dtype, self.weight.device)
        if self._normalized_cache is None or self._normalized_cache[0] != key:
            with torch.no_grad():
                self._normalized_cache = (key, self.weight / self.sigma())
        return self._normalized_cache[1]


class SNConv2d(nn.Conv2d, SpectralNorm):
    def __init__(self, in_channels, out_channels, kernel_size=3, padding=1, bias=True,
                 eps=1e-12):
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, padding=padding,
                           bias=bias)
        self._init_spectral_norm(out_channels, eps)

    def forward(self, x):
        return winograd.conv2d(x, self.normalized_weight(), self.bias, self.padding[0])


class SNLinear(nn.Linear, SpectralNorm):
    def __init__(self, in_features, out_features, bias=True, eps=1e-12):
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._init_spectral_norm(out_features, eps)

    def forward(self, x):
        return F.linear(x, self.normalized_weight(), self.bias)


class SNEmbedding(nn.Embedding, SpectralNorm):
    """Embedding with spectral norm over the (num_embeddings, dim) table (D's projection)."""

    def __init__(self, num_embeddings, embedding_dim, eps=1e-12):
        nn.Embedding.__init__(self, num_embeddings, embedding_dim)
        self._init_spectral_norm(num_embeddings, eps)

    def forward(self, index):
        return F.embedding(index, self.normalized_weight())


def conv3x3(in_channels, out_channels, spectral_norm: bool, sn_eps: float = 1e-12):
    if spectral_norm:
        return SNConv2d(in_channels, out_channels, 3, padding=1, eps=sn_eps)
    return winograd.Conv2d(in_channels, out_channels, 3, padding=1)


def conv1x1(in_channels, out_channels, spectral_norm: bool, bias=True, sn_eps=1e-12):
    if spectral_norm:
        return SNConv2d(in_channels, out_channels, 1, padding=0, bias=bias, eps=sn_eps)
    return nn.Conv2d(in_channels, out_channels, 1, padding=0, bias=bias)


def linear(in_features, out_features, spectral_norm: bool, bias=True, sn_eps=1e-12):
    if spectral_norm:
        return SNLinear(in_features, out_features, bias=bias, eps=sn_eps)
    return nn.Linear(in_features, out_features, bias=bias)


def instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """InstanceNorm without affine: per image and channel, biased variance over H, W.
    Written out because F.instance_norm gives up channels-last memory and F.group_norm's
    one-pass variance loses ~1e-5 (which the correspondence's 1/T = 100 magnifies)."""
    centred = x - x.mean(dim=(2, 3), keepdim=True)
    return centred * torch.rsqrt(centred.square().mean(dim=(2, 3), keepdim=True) + eps)


class InstanceNorm(nn.Module):
    """`instance_norm` as a module (no parameters, like nn.InstanceNorm2d(affine=False))."""

    def forward(self, x):
        return instance_norm(x)


class _StoredStatsNorm(nn.Module):
    """Batch norm over (B, H, W) with BigGAN's buffer names `stored_mean` / `stored_var`.

    Train mode normalises with the batch statistics and updates the stored ones
    (momentum 0.1, unbiased running variance); eval mode uses the stored ones.
    """

    def __init__(self, num_channels: int, eps: float, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.register_buffer("stored_mean", torch.zeros(num_channels))
        self.register_buffer("stored_var", torch.ones(num_channels))

    def _normalize(self, x, weight=None, bias=None):
        return F.batch_norm(x, self.stored_mean, self.stored_var, weight, bias,
                            self.training, self.momentum, self.eps)


class ConditionalBatchNorm(_StoredStatsNorm):
    """BigGAN `ccbn`: bn(x) * (1 + gain(y)) + bias(y), gain/bias bias-free linears.

    x (B, C, H, W), y (B, cond_dim) -> (B, C, H, W). G uses SN linears, E plain ones.
    """

    def __init__(self, num_channels: int, cond_dim: int, spectral_norm: bool,
                 eps: float = 1e-5, sn_eps: float = 1e-12):
        super().__init__(num_channels, eps)
        self.gain = linear(cond_dim, num_channels, spectral_norm, bias=False, sn_eps=sn_eps)
        self.bias = linear(cond_dim, num_channels, spectral_norm, bias=False, sn_eps=sn_eps)

    def forward(self, x, y):
        gain = (1 + self.gain(y))[:, :, None, None]
        bias = self.bias(y)[:, :, None, None]
        return self._normalize(x) * gain + bias


class AffineBatchNorm(_StoredStatsNorm):
    """BigGAN `bn` (G's output layer): batch norm with its own `gain` / `bias` vectors."""

    def __init__(self, num_channels: int, eps: float = 1e-5):
        super().__init__(num_channels, eps)
        self.gain = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x):
        return self._normalize(x, self.gain, self.bias)


class Attention(nn.Module):
    """SA-GAN self-attention as in BigGAN: x + gamma * o(attend(theta, maxpool(phi, g))).

    (B, C, H, W) -> (B, C, H, W); theta/phi have C/8 channels, g C/2; keys and values
    are 2x2 max-pooled, softmax over the pooled positions, no scaling of the logits.
    """

    def __init__(self, ch: int, spectral_norm: bool, sn_eps: float = 1e-12):
        super().__init__()
        self.theta = conv1x1(ch, ch // 8, spectral_norm, bias=False, sn_eps=sn_eps)
        self.phi = conv1x1(ch, ch // 8, spectral_norm, bias=False, sn_eps=sn_eps)
        self.g = conv1x1(ch, ch // 2, spectral_norm, bias=False, sn_eps=sn_eps)
        self.o = conv1x1(ch // 2, ch, spectral_norm, bias=False, sn_eps=sn_eps)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x):
        b, _, h, w = x.shape
        query = self.theta(x).flatten(2).transpose(1, 2)                 # (B, HW, C/8)
        key = F.max_pool2d(self.phi(x), 2).flatten(2).transpose(1, 2)    # (B, HW/4, C/8)
        value = F.max_pool2d(self.g(x), 2).flatten(2).transpose(1, 2)    # (B, HW/4, C/2)
        attended = torch.softmax(query @ key.transpose(1, 2), dim=-1) @ value
        attended = attended.transpose(1, 2).reshape(b, -1, h, w)         # (B, C/2, H, W)
        return x + self.gamma * self.o(attended)


class GBlock(nn.Module):
    """BigGAN G residual block; with `resample="down"` it is the GAN encoder's block.

    h = conv2(act(bn2(conv1(resample(act(bn1(x, y)))), y))); out = h + conv_sc(resample(x)).
    "up" = nearest x2 (G), "down" = 2x2 average pooling (E), None = same size.
    """

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int,
                 spectral_norm: bool, resample: str | None, bn_eps=1e-5, sn_eps=1e-12):
        super().__init__()
        if resample not in ("up", "down", None):
            raise ValueError(f"resample must be 'up', 'down' or None, not {resample!r}")
        self.resample = resample
        self.conv1 = conv3x3(in_channels, out_channels, spectral_norm, sn_eps)
        self.conv2 = conv3x3(out_channels, out_channels, spectral_norm, sn_eps)
        if in_channels != out_channels or resample:
            self.conv_sc = conv1x1(in_channels, out_channels, spectral_norm, sn_eps=sn_eps)
        else:
            self.conv_sc = None
        self.bn1 = ConditionalBatchNorm(in_channels, cond_dim, spectral_norm, bn_eps, sn_eps)
        self.bn2 = ConditionalBatchNorm(out_channels, cond_dim, spectral_norm, bn_eps, sn_eps)

    def _resample(self, x):
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        return x

    def forward(self, x, y):
        """x (B, in, H, W), y (B, cond_dim) -> (B, out, H', W'), H' = 2H / H/2 / H."""
        h = self._resample(F.relu(self.bn1(x, y)))
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        x = self._resample(x)
        if self.conv_sc is not None:
            x = self.conv_sc(x)
        return h + x


def pooled_conv3x3_kernel(weight: torch.Tensor) -> torch.Tensor:
    """(O, C, 3, 3) -> (O, C, 4, 4) kernel K with conv(x, K, stride=2, padding=1) ==
    avg_pool2d(conv(x, weight, padding=1), 2): the 3x3 kernel smeared over the 2x2 pool
    window. 16 taps per pooled output instead of 4 x 9."""
    return (F.pad(weight, (0, 1, 0, 1)) + F.pad(weight, (1, 0, 0, 1))
            + F.pad(weight, (0, 1, 1, 0)) + F.pad(weight, (1, 0, 1, 0))) / 4


class DBlock(nn.Module):
    """BigGAN D residual block ("wide": the hidden width is the output width).

    The first block of D (`preactivation=False`) pools before its shortcut conv; later
    blocks apply ReLU to the input and pool after the shortcut conv. Pooling and a 1x1
    conv commute, so both pool first (4x fewer shortcut products); conv2 followed by
    the pool runs as one stride-2 conv (`pooled_conv3x3_kernel`, 2.25x fewer products).
    """

    def __init__(self, in_channels: int, out_channels: int, preactivation: bool,
                 downsample: bool, sn_eps=1e-12):
        super().__init__()
        self.preactivation, self.downsample = preactivation, downsample
        self.conv1 = conv3x3(in_channels, out_channels, True, sn_eps)
        self.conv2 = conv3x3(out_channels, out_channels, True, sn_eps)
        if in_channels != out_channels or downsample:
            self.conv_sc = conv1x1(in_channels, out_channels, True, sn_eps=sn_eps)
        else:
            self.conv_sc = None

    def _conv2_pooled(self, h):
        if not self.downsample:
            return self.conv2(h)
        kernel = pooled_conv3x3_kernel(self.conv2.normalized_weight())
        return F.conv2d(h, kernel, self.conv2.bias, stride=2, padding=1)

    def _shortcut(self, x):
        x = F.avg_pool2d(x, 2) if self.downsample else x
        return self.conv_sc(x) if self.conv_sc is not None else x

    def forward(self, x):
        """(B, in, H, W) -> (B, out, H/2, W/2) (or H, W without downsampling)."""
        h = F.relu(x) if self.preactivation else x
        h = self._conv2_pooled(F.relu(self.conv1(h)))
        return h + self._shortcut(x)
