"""Golden cases of the BigGAN building blocks (spectral norm, ccbn, blocks, attention)."""

import pytest
import torch

from gcp_colorize.model import layers
from golden_cases import assert_allclose, load_case, load_strict

TOL = dict(atol=1e-5, rtol=1e-5)  # README: fp32 vs fp64 <= 2e-6 for these cases


@pytest.mark.parametrize("case, make", [
    ("sn_conv2d.pt", lambda: layers.SNConv2d(6, 5, 3, padding=1)),
    ("sn_linear.pt", lambda: layers.SNLinear(10, 7)),
])
def test_spectral_norm_eval(case, make):
    data = load_case(case)
    module = load_strict(make(), data["state_dict"])
    u0, sv0 = module.u0.clone(), module.sv0.clone()
    out = data["outputs"]
    with torch.no_grad():
        assert_allclose(module(data["inputs"]["x"]), out["y"], **TOL, what="y")
        u, v = module.power_iteration()
        assert_allclose(u, out["u_new"], **TOL, what="u")
        assert_allclose(v, out["v_new"], **TOL, what="v")
        assert_allclose(module.sigma().reshape(1), out["sigma"], **TOL, what="sigma")
        assert_allclose(module.normalized_weight(), out["W_sn"], **TOL, what="W_sn")
        module(data["inputs"]["x"])  # cached sigma path
    assert torch.equal(module.u0, u0) and torch.equal(module.sv0, sv0), "eval changed u0/sv0"


@pytest.mark.parametrize("case, make", [
    ("sn_conv2d.pt", lambda: layers.SNConv2d(6, 5, 3, padding=1)),
    ("sn_linear.pt", lambda: layers.SNLinear(10, 7)),
])
def test_spectral_norm_train_updates_u0_and_sv0(case, make):
    data = load_case(case)
    module = load_strict(make(), data["state_dict"]).train()
    expected = data["extra"]["train_mode_single_forward"]
    y = module(data["inputs"]["x"])
    assert y.requires_grad
    assert_allclose(y, expected["y"], **TOL, what="train y")
    assert_allclose(module.u0, expected["u0_after"], **TOL, what="u0 after")
    assert_allclose(module.sv0, expected["sv0_after"], **TOL, what="sv0 after")


@pytest.mark.parametrize("case, spectral_norm", [("ccbn_G_snlinear.pt", True),
                                                  ("ccbn_E_linear.pt", False)])
def test_conditional_batch_norm(case, spectral_norm):
    data = load_case(case)
    module = load_strict(layers.ConditionalBatchNorm(8, 12, spectral_norm), data["state_dict"])
    with torch.no_grad():
        out = module(data["inputs"]["x"], data["inputs"]["y"])
    assert_allclose(out, data["outputs"]["out"], **TOL)


@pytest.mark.parametrize("case, make", [
    ("gblock_G.pt", lambda: layers.GBlock(8, 4, 12, spectral_norm=True, resample="up")),
    ("gblock_E.pt", lambda: layers.GBlock(4, 8, 12, spectral_norm=False, resample="down")),
])
def test_gblock(case, make):
    data = load_case(case)
    module = load_strict(make(), data["state_dict"])
    with torch.no_grad():
        out = module(data["inputs"]["x"], data["inputs"]["y"])
    assert_allclose(out, data["outputs"]["out"], **TOL)


def test_attention_non_square():
    data = load_case("attention_sn.pt")
    module = load_strict(layers.Attention(16, spectral_norm=True), data["state_dict"])
    with torch.no_grad():
        out = module(data["inputs"]["x"])
    assert_allclose(out, data["outputs"]["out"], **TOL)


@pytest.mark.parametrize("case, make", [
    ("dblock_first.pt", lambda: layers.DBlock(3, 8, preactivation=False, downsample=True)),
    ("dblock_preact.pt", lambda: layers.DBlock(8, 16, preactivation=True, downsample=True)),
])
def test_dblock(case, make):
    data = load_case(case)
    module = load_strict(make(), data["state_dict"])
    with torch.no_grad():
        out = module(data["inputs"]["x"])
    assert_allclose(out, data["outputs"]["out"], **TOL)
