"""The colorization network: x_l -> ab, modulated by the warped GAN features via SPADE;
optionally (config.ab_bins, ours) with a distribution over ab cells decoded by annealed mean."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import GCPConfig
from .layers import InstanceNorm
from .spade import SPADE, SPADEResBlock


class ColorizationNet(nn.Module):
    """Encoder (R -> R/4), SPADE residual blocks at R/4, two transposed-conv ups, tanh head.

    encoder: reflect pad 3, conv7 (1 -> ngf), IN, ReLU, 2 x [conv3 stride 2, IN, ReLU];
    SPADE widths are the channels of the warped G features at R/4, R/2 and R.
    Runs in channels-last memory (faster convolutions on CPU).
    """

    def __init__(self, config: GCPConfig):
        super().__init__()
        ngf = config.color_ngf
        feat = config.feature_channels
        quarter, half, full = config.feature_resolutions
        self.feature_sizes = (quarter, half, full)
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(1, ngf, 7),
            InstanceNorm(),
            nn.ReLU(),
            nn.Conv2d(ngf, ngf * 2, 3, stride=2, padding=1),
            InstanceNorm(),
            nn.ReLU(),
            nn.Conv2d(ngf * 2, ngf * 4, 3, stride=2, padding=1),
            InstanceNorm(),
            nn.ReLU(),
        )
        self.res_blks = nn.ModuleList(
            SPADEResBlock(ngf * 4, ngf * 4, feat[quarter]) for _ in range(config.color_res_blocks))
        self.up_norm1 = SPADE(ngf * 4, feat[quarter])
        self.up_conv1 = nn.ConvTranspose2d(ngf * 4, ngf * 2, 3, stride=2, padding=1,
                                           output_padding=1)
        self.up_norm2 = SPADE(ngf * 2, feat[half])
        self.up_conv2 = nn.ConvTranspose2d(ngf * 2, ngf, 3, stride=2, padding=1,
                                           output_padding=1)
        self.up_norm3 = SPADE(ngf, feat[full])
        self.head = nn.Sequential(nn.Conv2d(ngf, 2, 3, padding=1), nn.Tanh())
        self.bins = ABDistributionHead(ngf, config.ab_bins, config.ab_temperature) \
            if config.ab_bins else None

    def forward(self, x_l: torch.Tensor, warped: dict[int, torch.Tensor],
                with_logits: bool = False):
        """x_l (B, 1, H, W) = L/50 - 1; warped {R/4: (B, C4, H/4, W/4), R/2: ..., R: ...}
        -> ab_norm (B, 2, H, W) = ab/110 in [-1, 1]; `with_logits` (config.ab_bins only):
        (ab_norm, logits (B, n*n, H, W))."""
        quarter, half, full = (warped[size].contiguous(memory_format=torch.channels_last)
                               for size in self.feature_sizes)
        x = self.encoder(x_l.contiguous(memory_format=torch.channels_last))
        for block in self.res_blks:
            x = block(x, quarter)
        x = self.up_conv1(F.leaky_relu(self.up_norm1(x, quarter), 0.2))
        x = self.up_conv2(F.leaky_relu(self.up_norm2(x, half), 0.2))
        x = F.leaky_relu(self.up_norm3(x, full), 0.2)
        ab = self.head(x)
        if self.bins is None:
            return ab
        ab, logits = self.bins(x, ab)
        return (ab, logits) if with_logits else ab


class ABDistributionHead(nn.Module):
    """A distribution over an n x n grid of ab cells, decoded by its annealed mean.

    logits = a Gaussian around the regression head's ab (width GAUSSIAN_CELLS cells) + a
    learned 1x1-conv correction (zero at the start, so a regression net gets this head
    without changing its colours: the annealed mean of a Gaussian is its centre). Training
    the correction with cross-entropy lets a pixel hold several candidate colours; the
    annealed mean at temperature T < 1 then leans towards the likeliest one instead of
    their muted average (Zhang et al. 2016 decode the same way, T = 0.38).
    """

    GAUSSIAN_CELLS = 2.0
    # Adam moves a weight by about lr per step; the gain lets the zero-initialised
    # correction reach logit changes of a few units within a fine-tune of ~1000 steps.
    CORRECTION_GAIN = 10.0

    def __init__(self, channels: int, n: int, temperature: float):
        super().__init__()
        self.temperature = temperature
        self.correction = nn.Conv2d(channels, n * n, 1)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)
        self.n = n
        self.sigma = self.GAUSSIAN_CELLS * 2 / n

    def forward(self, features: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B, C, H, W), the regression's ab_norm (B, 2, H, W) ->
        annealed-mean ab_norm (B, 2, H, W), logits (B, n*n, H, W) (the centre detached)."""
        # fp32 even under autocast: logits of scale 1/sigma^2 lose the centre in bf16
        with torch.autocast(features.device.type, enabled=False):
            # not a buffer: weights are loaded onto meta-device modules, which keep no data
            centres = ab_cell_centres(self.n).to(features.device)
            ab = ab.float()
            # -|c - ab|^2 / 2 sigma^2 without the |ab|^2 term (the same for every cell)
            gaussian = (torch.einsum("qc,bchw->bqhw", centres, ab)
                        - 0.5 * centres.square().sum(1)[None, :, None, None]) / self.sigma ** 2
            correction = self.CORRECTION_GAIN * self.correction(features.float())
            p = torch.softmax((gaussian + correction) / self.temperature, dim=1)
            # The logits a cross-entropy sees hold the centre fixed: through the Gaussian it
            # would act as an L2 regression of the centre (to the muted mean colour); only
            # the correction is to learn which other colours are likely.
            return torch.einsum("bqhw,qc->bchw", p, centres), gaussian.detach() + correction


def ab_cell_centres(n: int) -> torch.Tensor:
    """(n*n, 2) centres of an n x n grid over the ab_norm square [-1, 1]^2, a-major."""
    axis = (torch.arange(n, dtype=torch.float32) + 0.5) * 2 / n - 1
    return torch.cartesian_prod(axis, axis)


def ab_cell_index(ab_norm: torch.Tensor, n: int) -> torch.Tensor:
    """(B, 2, H, W) ab_norm -> (B, H, W) index of its cell in `ab_cell_centres(n)`."""
    cells = ((ab_norm + 1) * n / 2).long().clamp(0, n - 1)
    return cells[:, 0] * n + cells[:, 1]
