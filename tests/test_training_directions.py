"""Latent directions: discovery gives orthonormal z directions that move G's features;
naming follows the measured effect."""

import pytest
import torch

from gcp_colorize.model.config import GCPConfig
from gcp_colorize.model.gcp import GCPModel
from gcp_colorize.training.directions import Effect, discover, measure, name_of

CONFIG = GCPConfig(name="test64", resolution=64, n_classes=10, dim_z=120, shared_dim=16,
                   g_ch=2, d_ch=4, e_ch=4, attention_resolution=16, corr_nonlocal_nc=8,
                   color_ngf=4, color_res_blocks=1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GCPModel(CONFIG).eval()


def effect(**values):
    base = dict.fromkeys(Effect.__dataclass_fields__, 0.0)
    return Effect(**{**base, **values})


def test_discovered_directions_are_orthonormal_and_move_the_features_most(model):
    directions = discover(model, torch.arange(10), count=3, samples=64, batch_size=32)
    assert directions.shape == (3, 120)
    assert torch.allclose(directions @ directions.T, torch.eye(3), atol=1e-5)

    def feature_change(d):
        z = torch.randn(16, 120, generator=torch.Generator().manual_seed(5))
        y = model.generator.shared(torch.arange(16) % 10)
        with torch.no_grad():
            a = model.generator(z + 2 * d, y)[1]
            b = model.generator(z - 2 * d, y)[1]
        return sum((a[s] - b[s]).abs().mean() for s in a).item()

    random = torch.nn.functional.normalize(torch.randn(120, generator=torch.Generator().manual_seed(1)), dim=0)
    assert feature_change(directions[0]) > feature_change(random)


def test_names_follow_the_largest_effect_and_its_region():
    assert name_of(effect(chroma=2.0, centre_chroma=2.0, border_chroma=1.8, a=0.3)) == ("saturation", 1.0)
    assert name_of(effect(b=-1.0, centre_b=-0.2, border_b=-1.5)) == ("background warmth", -1.0)
    assert name_of(effect(a=0.8, centre_a=1.6, border_a=0.4)) == ("object tint", 1.0)
    flipped = effect(chroma=1.0, delta_e=3.0).flipped()
    assert flipped.chroma == -1.0 and flipped.delta_e == 3.0


def test_measure_reports_slopes_per_unit_of_walk(model):
    x_l = torch.rand(2, 1, 64, 64) * 2 - 1
    d = torch.nn.functional.normalize(torch.randn(120), dim=0)
    e = measure(model, x_l, torch.tensor([1, 2]), d, amount=3.0)
    mirrored = measure(model, x_l, torch.tensor([1, 2]), -d, amount=3.0)
    assert e.chroma == pytest.approx(-mirrored.chroma, abs=1e-4)
    assert e.delta_e >= 0
