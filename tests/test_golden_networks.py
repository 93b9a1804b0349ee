"""Golden cases of the three BigGAN-family networks at the tiny widths (config TINY)."""

import torch

from gcp_colorize.model.biggan_discriminator import (BigGANDiscriminator, DiscriminatorFeatures,
                                                     feature_state_dict)
from gcp_colorize.model.biggan_generator import BigGANGenerator
from gcp_colorize.model.config import TINY
from gcp_colorize.model.encoder import GANEncoder
from golden_cases import assert_close, load_case, load_strict


def test_generator_image_and_features():
    data = load_case("biggan_G_tiny256.pt")
    generator = load_strict(BigGANGenerator(TINY), data["state_dict"])
    inputs = data["inputs"]
    assert torch.equal(generator.shared(inputs["cid"]), inputs["y"])
    with torch.no_grad():
        image, features = generator(inputs["z"], inputs["y"])
        shifted_unused, _ = generator(inputs["z"] + torch.eye(120)[119], inputs["y"])
    assert_close(image, data["outputs"]["image"], atol=5e-5, what="image")
    assert sorted(features) == [64, 128, 256]
    for size, expected in data["outputs"]["features"].items():
        assert_close(features[size], expected, atol=5e-5, what=f"feature {size}")
    assert torch.equal(image, shifted_unused), "z[:, 119] must have no effect"


def test_encoder():
    data = load_case("biggan_E_tiny.pt")
    encoder = load_strict(GANEncoder(TINY), data["state_dict"])
    inputs = data["inputs"]
    assert torch.equal(encoder.shared(inputs["cid"]), inputs["y"])
    with torch.no_grad():
        z = encoder(inputs["x"], inputs["y"])
    assert_close(z, data["outputs"]["z"], atol=2e-5)


def test_discriminator_feature_path():
    data = load_case("biggan_D_features_tiny.pt")
    full = load_strict(BigGANDiscriminator(TINY), data["state_dict"])
    standalone = load_strict(DiscriminatorFeatures(TINY), feature_state_dict(data["state_dict"]))
    for net in (full.feature_net(), standalone):
        with torch.no_grad():
            for name in ("gray", "rgb"):
                features = net(data["inputs"][f"x_{name}"])
                expected = data["outputs"][f"feats_{name}"]
                assert len(features) == len(expected) == 2
                for i, (a, e) in enumerate(zip(features, expected)):
                    assert_close(a, e, atol=2e-5, what=f"{name} feature {i}")


def test_discriminator_full_forward_is_a_projection_head():
    """No golden output exists for D's head (unused by GCP); check its definition."""
    data = load_case("biggan_D_features_tiny.pt")
    d = load_strict(BigGANDiscriminator(TINY), data["state_dict"])
    x, classes = data["inputs"]["x_gray"], torch.tensor([1, 7])
    with torch.no_grad():
        h = torch.cat([x] * 3, dim=1)
        for stage in d.blocks:
            for module in stage:
                h = module(h)
        pooled = torch.relu(h).sum(dim=(2, 3))
        expected = d.linear(pooled) + (d.embed(classes) * pooled).sum(1, keepdim=True)
        assert torch.allclose(d(x, classes), expected, atol=1e-6)
