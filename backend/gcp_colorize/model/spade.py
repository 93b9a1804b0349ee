"""SPADE conditioned on warped GAN features, as in GCP: positional norm, a deformable
refinement of the condition, and the SPADE residual block."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd
from .deform_conv import ModulatedDeformConv2d


def positional_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each pixel over channels, with the UNBIASED variance (as the official)."""
    var, mean = torch.var_mean(x, dim=1, keepdim=True)
    return (x - mean) / (var + eps).sqrt()


class SPADE(nn.Module):
    """out = norm * (1 + gamma) + beta, gamma/beta from the refined condition.

    cond = ReLU(conv(ReLU(conv(cat(norm, ref))))) (middle width (nc + s) // 8);
    ref_refined = DCN(ref, offsets/mask from cond); gamma, beta = conv(ref_refined).
    x (B, nc, H, W), ref (B, s, H, W) -> (B, nc, H, W).
    """

    def __init__(self, norm_nc: int, spade_nc: int):
        super().__init__()
        hidden = (norm_nc + spade_nc) // 8
        self.conv_cond = nn.Sequential(
            nn.Conv2d(norm_nc + spade_nc, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, spade_nc, 3, padding=1),
            nn.ReLU(),
        )
        self.dcn = ModulatedDeformConv2d(spade_nc, spade_nc, 3, padding=1)
        self.mlp_gamma = nn.Conv2d(spade_nc, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(spade_nc, norm_nc, 3, padding=1)

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        normalized = positional_norm(x)
        cond = self.conv_cond(torch.cat((normalized, ref), dim=1))
        refined = self.dcn(ref, cond)
        # gamma and beta read the same input: one conv with both kernels stacked.
        gamma_beta = winograd.conv2d(
            refined, torch.cat((self.mlp_gamma.weight, self.mlp_beta.weight)),
            torch.cat((self.mlp_gamma.bias, self.mlp_beta.bias)), self.mlp_gamma.padding[0])
        gamma, beta = gamma_beta.split(x.size(1), dim=1)
        if torch.is_grad_enabled():
            return normalized * (1 + gamma) + beta
        return beta.addcmul_(normalized, gamma).add_(normalized)  # no copies when not training


class SPADEResBlock(nn.Module):
    """x + conv_1(pad(lrelu(norm_1(conv_0(pad(lrelu(norm_0(x, ref)))), ref)))).

    Reflect padding before both 3x3 convs; with fin != fout the shortcut is
    conv_s(norm_s(x, ref)) (bias-free 1x1). x (B, fin, H, W) -> (B, fout, H, W).
    """

    def __init__(self, fin: int, fout: int, spade_nc: int):
        super().__init__()
        middle = min(fin, fout)
        self.conv_0 = winograd.Conv2d(fin, middle, 3)
        self.conv_1 = winograd.Conv2d(middle, fout, 3)
        self.norm_0 = SPADE(fin, spade_nc)
        self.norm_1 = SPADE(middle, spade_nc)
        if fin != fout:
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)
            self.norm_s = SPADE(fin, spade_nc)
        else:
            self.conv_s = self.norm_s = None

    @staticmethod
    def _activate_and_pad(x):
        return F.pad(F.leaky_relu(x, 0.2), (1, 1, 1, 1), mode="reflect")

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.conv_s is None else self.conv_s(self.norm_s(x, ref))
        dx = self.conv_0(self._activate_and_pad(self.norm_0(x, ref)))
        dx = self.conv_1(self._activate_and_pad(self.norm_1(dx, ref)))
        return shortcut + dx
