"""The reduced-precision mode: a whole (small) GCP forward pass under it."""

import dataclasses

import pytest
import torch

from gcp_colorize.model.config import TINY
from gcp_colorize.model.gcp import GCPModel
from gcp_colorize.model.precision import reduced_precision


def test_model_runs_in_bfloat16_and_stays_near_fp32():
    config = dataclasses.replace(TINY, resolution=64, attention_resolution=16)
    torch.manual_seed(0)
    model = GCPModel(config).eval()
    x_l, classes = torch.rand(1, 1, 64, 64) * 2 - 1, torch.tensor([3])
    with torch.no_grad():
        exact = model(x_l, classes)
        with reduced_precision("cpu"):
            reduced = model(x_l, classes)
    assert reduced.dtype == torch.bfloat16
    assert (reduced.float() - exact).abs().max() < 0.1


@pytest.mark.parametrize("device, dtype, message", [
    ("meta", None, "no reduced-precision mode"),
    ("cpu", torch.float64, "bfloat16 or float16"),
])
def test_refuses_what_it_cannot_do(device, dtype, message):
    with pytest.raises(ValueError, match=message):
        reduced_precision(device, dtype)
