"""Lab conversion beyond the golden data: an independent implementation, round trips,
finite gradients for training."""

import pytest
import torch

from gcp_colorize.model import lab


def test_rgb_to_lab_agrees_with_scikit_image():
    color = pytest.importorskip("skimage.color")
    torch.manual_seed(0)
    rgb = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    ours = lab.rgb_to_lab(rgb)[0].permute(1, 2, 0).numpy()
    theirs = color.rgb2lab(rgb[0].permute(1, 2, 0).numpy())  # textbook formulas, D65
    assert abs(ours - theirs).max() < 0.01


def test_model_normalisation_round_trip():
    torch.manual_seed(1)
    rgb = torch.rand(2, 3, 16, 16)
    x_l, ab_norm = lab.normalize_lab(lab.rgb_to_lab(rgb))
    assert x_l.min() >= -1 and x_l.max() <= 1 and ab_norm.abs().max() <= 1
    assert torch.allclose(lab.rgb_to_model_input(rgb), x_l)
    assert torch.allclose(lab.model_output_to_rgb(x_l, ab_norm), rgb, atol=1e-4)


def test_gradients_stay_finite_at_branch_edges_and_out_of_gamut():
    rgb = torch.tensor([0.0, 0.04045, 1.0, -0.2, 1.3, 0.5], dtype=torch.float64)
    rgb = rgb.view(1, 1, 1, 6).expand(1, 3, 1, 6).clone().requires_grad_()
    lab.rgb_to_lab(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()
    lab_values = torch.tensor([[0.0, 50.0, 100.0, 120.0, -10.0],
                               [0.0, 110.0, -110.0, 0.0, 0.0],
                               [0.0, -110.0, 110.0, 0.0, 0.0]], dtype=torch.float64)
    lab_values = lab_values.view(1, 3, 1, 5).requires_grad_()
    lab.lab_to_rgb(lab_values).sum().backward()
    assert torch.isfinite(lab_values.grad).all()


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        lab.rgb_to_lab(torch.zeros(1, 4, 2, 2))
