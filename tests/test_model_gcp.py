"""GCPModel wiring, input checks, the warp's patch bookkeeping and training gradients."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from gcp_colorize.model.config import SMALL, TINY
from gcp_colorize.model.correspondence import CorrespondenceNet
from gcp_colorize.model.gcp import GCPModel

TINY64 = dataclasses.replace(TINY, resolution=64, attention_resolution=16)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return GCPModel(TINY64).eval()


def test_run_shapes_and_shift(tiny_model):
    x_l, classes = torch.rand(2, 1, 64, 64) * 2 - 1, torch.tensor([0, 9])
    with torch.no_grad():
        run = tiny_model.run(x_l, classes)
        shifted = tiny_model.run(x_l, classes, z_shift=torch.ones(TINY64.dim_z))
        assert torch.equal(tiny_model(x_l, classes), run.ab_norm)
    assert run.z.shape == (2, 120) and run.reference.shape == (2, 3, 64, 64)
    assert {s: tuple(m.shape) for s, m in run.warped.items()} == {
        16: (2, 16, 16, 16), 32: (2, 8, 32, 32), 64: (2, 4, 64, 64)}  # G at 64 ends at 2 g_ch
    assert run.ab_norm.shape == (2, 2, 64, 64) and run.ab_norm.abs().max() <= 1
    assert torch.allclose(shifted.z, run.z + 1)
    assert not torch.allclose(shifted.ab_norm, run.ab_norm)


@pytest.mark.parametrize("x_shape, classes, message", [
    ((1, 1, 32, 32), torch.tensor([0]), r"x_l must be \(B, 1, 64, 64\)"),
    ((1, 3, 64, 64), torch.tensor([0]), "x_l must be"),
    ((2, 1, 64, 64), torch.tensor([0]), "class_index must be"),
    ((1, 1, 64, 64), torch.tensor([0.0]), "int64"),
    ((1, 1, 64, 64), torch.tensor([10]), "out of range 0..9"),
    ((1, 1, 64, 64), torch.tensor([-1]), "out of range"),
])
def test_bad_inputs_are_refused_clearly(tiny_model, x_shape, classes, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(torch.zeros(x_shape), classes)


def test_warp_equals_the_explicit_unfold_matmul_fold(tiny_model):
    """The attention-based warp against the official formulation, in float64."""
    torch.manual_seed(1)
    net = CorrespondenceNet(TINY64).double().eval()
    grid = 16
    theta = F.normalize(torch.randn(2, grid * grid, 16, dtype=torch.float64), dim=-1)
    phi = F.normalize(torch.randn(2, grid * grid, 16, dtype=torch.float64), dim=-1)
    maps = [torch.randn(2, c, grid * s, grid * s, dtype=torch.float64)
            for c, s in ((3, 4), (8, 1), (4, 2))]
    corr = net.correlation(theta, phi)
    assert torch.allclose(corr.sum(-1), torch.ones(2, grid * grid, dtype=torch.float64))
    for m, warped in zip(maps, net.warp(theta, phi, maps)):
        s = m.size(-1) // grid
        patches = F.unfold(m, s, stride=s)                               # (B, C s s, N)
        expected = F.fold((corr @ patches.transpose(1, 2)).transpose(1, 2), m.shape[-2:], s,
                          stride=s)
        assert torch.allclose(warped, expected, atol=1e-12)


def test_training_gradients_skip_only_the_frozen_discriminator():
    torch.manual_seed(2)
    model = GCPModel(TINY64).train()
    ab = model(torch.rand(2, 1, 64, 64) * 2 - 1, torch.tensor([1, 2]))
    ab.square().mean().backward()
    for name in ("encoder", "generator", "correspondence", "colorization"):
        params = list(getattr(model, name).parameters())
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), name
    assert all(p.grad is None for p in model.discriminator_features.parameters())


def test_small_config_runs_at_its_native_128():
    torch.manual_seed(3)
    model = GCPModel(SMALL).eval()
    with torch.no_grad():
        run = model.run(torch.rand(1, 1, 128, 128) * 2 - 1, torch.tensor([207]))
    assert run.ab_norm.shape == (1, 2, 128, 128) and torch.isfinite(run.ab_norm).all()
    assert sorted(run.warped) == [32, 64, 128]


def test_a_semantic_config_needs_the_maps_and_starts_without_their_effect():
    """The projection of the classifier's maps starts at zero: a net trained without
    them, loaded into the semantic config, computes the same colours."""
    from gcp_colorize.model.classifier import SEMANTIC_CHANNELS
    torch.manual_seed(4)
    plain = GCPModel(TINY64).eval()
    semantic = GCPModel(dataclasses.replace(TINY64, semantic_features=True)).eval()
    missing, unexpected = semantic.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing == ["colorization.semantic_projection.weight",
                                          "colorization.semantic_projection.bias"]
    x_l, classes = torch.rand(1, 1, 64, 64) * 2 - 1, torch.tensor([3])
    maps = torch.randn(1, SEMANTIC_CHANNELS, 28, 28)
    with torch.no_grad():
        assert torch.equal(semantic(x_l, classes, semantic=maps), plain(x_l, classes))
        for model, given in ((semantic, None), (plain, maps)):
            with pytest.raises(ValueError, match="semantic maps are needed exactly when"):
                model(x_l, classes, semantic=given)
