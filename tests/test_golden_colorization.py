"""Golden cases of the colorization side: positional norm, DCNv2, SPADE, SPADE residual
blocks and the whole colorization net (tiny widths)."""

import pytest
import torch

from gcp_colorize.model.colorization_net import ColorizationNet
from gcp_colorize.model.config import TINY
from gcp_colorize.model.deform_conv import ModulatedDeformConv2d
from gcp_colorize.model.spade import SPADE, SPADEResBlock, positional_norm
from golden_cases import assert_allclose, assert_close, load_case, load_strict

TOL = dict(atol=1e-5, rtol=1e-5)


def test_positional_norm():
    data = load_case("positional_norm.pt")
    assert_allclose(positional_norm(data["inputs"]["x"]), data["outputs"]["out"], **TOL)


def test_modulated_deformable_conv():
    data = load_case("dcnv2pack.pt")
    dcn = load_strict(ModulatedDeformConv2d(6, 5, 3, padding=1), data["state_dict"])
    with torch.no_grad():
        assert_allclose(dcn.conv_offset(data["inputs"]["feat"]),
                        data["extra"]["conv_offset_out"], **TOL, what="conv_offset")
        out = dcn(data["inputs"]["x"], data["inputs"]["feat"])
    assert_allclose(out, data["outputs"]["out"], **TOL)


def test_spade_and_its_intermediates():
    data = load_case("spade.pt")
    spade = load_strict(SPADE(8, 12), data["state_dict"])
    x, ref = data["inputs"]["x"], data["inputs"]["ref"]
    expected = data["extra"]["intermediates"]
    with torch.no_grad():
        normalized = positional_norm(x)
        cond = spade.conv_cond(torch.cat((normalized, ref), dim=1))
        refined = spade.dcn(ref, cond)
        assert_allclose(normalized, expected["normalized"], **TOL, what="normalized")
        assert_allclose(cond, expected["conv_cond"], **TOL, what="conv_cond")
        assert_allclose(spade.dcn.conv_offset(cond), expected["dcn.conv_offset"], **TOL,
                        what="dcn.conv_offset")
        assert_allclose(refined, expected["dcn"], **TOL, what="dcn")
        assert_allclose(spade.mlp_gamma(refined), expected["mlp_gamma"], **TOL, what="gamma")
        assert_allclose(spade.mlp_beta(refined), expected["mlp_beta"], **TOL, what="beta")
        assert_allclose(spade(x, ref), data["outputs"]["out"], **TOL)


@pytest.mark.parametrize("case, fout", [("spade_resblock.pt", 8),
                                        ("spade_resblock_shortcut.pt", 6)])
def test_spade_resblock(case, fout):
    data = load_case(case)
    block = load_strict(SPADEResBlock(8, fout, 12), data["state_dict"])
    with torch.no_grad():
        out = block(data["inputs"]["x"], data["inputs"]["ref"])
    assert_allclose(out, data["outputs"]["out"], **TOL)


def test_colorization_net():
    data = load_case("colorgen_tiny.pt")
    net = load_strict(ColorizationNet(TINY), data["state_dict"])
    with torch.no_grad():
        ab = net(data["inputs"]["x"], data["inputs"]["ref"])
    assert_close(ab, data["outputs"]["ab"], atol=5e-4)
