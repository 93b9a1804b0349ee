"""Golden cases of the correspondence network: residual block, embeddings, softmax
correlation and the multi-scale patch warp (tiny widths, official 64x64 grid)."""

import pytest
import torch

from gcp_colorize.model.biggan_discriminator import BigGANDiscriminator
from gcp_colorize.model.config import TINY
from gcp_colorize.model.correspondence import CorrespondenceNet, ResidualBlock
from golden_cases import assert_allclose, assert_close, load_case, load_strict


def test_residual_block():
    data = load_case("residual_block.pt")
    block = load_strict(ResidualBlock(6), data["state_dict"])
    with torch.no_grad():
        out = block(data["inputs"]["x"])
    assert_allclose(out, data["outputs"]["out"], atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def correspondence_run():
    data = load_case("correspondence_tiny.pt")
    featnet = load_strict(BigGANDiscriminator(TINY),
                          load_case("biggan_D_features_tiny.pt")["state_dict"]).feature_net()
    net = load_strict(CorrespondenceNet(TINY), data["state_dict"])
    inputs = data["inputs"]
    with torch.no_grad():
        query_features, ref_features = featnet(inputs["q"]), featnet(inputs["ref"])
        theta, phi = net(query_features, ref_features)
        sizes = sorted(inputs["ref_biggan_feat"])
        maps = [inputs["ref"]] + [inputs["ref_biggan_feat"][s] for s in sizes]
        warped = net.warp(theta, phi, maps)
        corr = net.correlation(theta, phi)
    return data, dict(query_features=query_features, ref_features=ref_features, corr=corr,
                      warp_image=warped[0], warp_feat=dict(zip(sizes, warped[1:])))


def test_featnet_outputs(correspondence_run):
    data, run = correspondence_run
    for side in ("q", "ref"):
        mine = run["query_features" if side == "q" else "ref_features"]
        for i, expected in enumerate(data["intermediates"][f"featnet_{side}"]):
            assert_close(mine[i], expected, atol=2e-5, what=f"featnet {side} {i}")


def test_softmax_correlation(correspondence_run):
    data, run = correspondence_run
    inter = data["intermediates"]
    corr = run["corr"][0]
    assert_close(corr[inter["corr_row_index"]], inter["corr_rows"], atol=1e-3, rms=5e-5,
                 what="corr rows")
    assert_close(corr.max(dim=-1).values, inter["corr_max"], atol=1e-3, rms=5e-5,
                 what="corr max")
    agree = (corr.argmax(dim=-1) == inter["corr_argmax"]).float().mean().item()
    assert agree >= 0.999, f"corr argmax agrees on only {agree:.2%} of rows"


def test_warp_outputs(correspondence_run):
    data, run = correspondence_run
    assert_close(run["warp_image"], data["outputs"]["warp_image"], atol=1e-3, rms=5e-5,
                 what="warp_image")
    for size, expected in data["outputs"]["warp_feat"].items():
        assert_close(run["warp_feat"][size], expected, atol=1e-3, rms=5e-5,
                     what=f"warp_feat {size}")
