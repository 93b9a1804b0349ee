"""Golden end-to-end case: GCPModel(TINY) with the five tiny official nets loaded
strictly, against the official `RefBasedModel.generate_fake`."""

import json

import torch
import torch.nn.functional as F

from gcp_colorize.model import lab
from gcp_colorize.model.biggan_discriminator import feature_state_dict
from gcp_colorize.model.config import TINY
from gcp_colorize.model.gcp import GCPModel
from golden_cases import assert_close, golden_dir, load_case

# Which golden file each GCPModel network is loaded from.
NETWORK_FILES = {
    "encoder": "biggan_E_tiny.pt",
    "generator": "biggan_G_tiny256.pt",
    "discriminator_features": "biggan_D_features_tiny.pt",
    "correspondence": "correspondence_tiny.pt",
    "colorization": "colorgen_tiny.pt",
}
# Every case of the golden folder and the test module that checks it.
CASES = {
    "sn_conv2d.pt": "layers", "sn_linear.pt": "layers", "ccbn_G_snlinear.pt": "layers",
    "ccbn_E_linear.pt": "layers", "gblock_G.pt": "layers", "gblock_E.pt": "layers",
    "attention_sn.pt": "layers", "dblock_first.pt": "layers", "dblock_preact.pt": "layers",
    "biggan_G_tiny256.pt": "networks", "biggan_E_tiny.pt": "networks",
    "biggan_D_features_tiny.pt": "networks", "residual_block.pt": "correspondence",
    "correspondence_tiny.pt": "correspondence", "positional_norm.pt": "colorization",
    "dcnv2pack.pt": "colorization", "spade.pt": "colorization",
    "spade_resblock.pt": "colorization", "spade_resblock_shortcut.pt": "colorization",
    "colorgen_tiny.pt": "colorization", "lab_conversion.pt": "lab_deformator",
    "deformator.pt": "lab_deformator", "pipeline_tiny.pt": "pipeline",
}


def test_every_golden_case_has_a_test():
    manifest = json.loads((golden_dir() / "manifest.json").read_text())
    assert {entry["file"] for entry in manifest["files"]} == set(CASES)


def load_tiny_model() -> GCPModel:
    model = GCPModel(TINY)
    for name, case in NETWORK_FILES.items():
        state = load_case(case)["state_dict"]
        if name == "discriminator_features":  # D's later blocks and head are not used
            state = feature_state_dict(state)
        getattr(model, name).load_state_dict(state, strict=True)
    return model.eval()


def test_pipeline_tiny_end_to_end():
    data = load_case("pipeline_tiny.pt")
    assert data["config"]["weights_from"] == {
        "biggan_E": NETWORK_FILES["encoder"], "biggan_G": NETWORK_FILES["generator"],
        "biggan_D": NETWORK_FILES["discriminator_features"],
        "net_corr": NETWORK_FILES["correspondence"], "net_gen": NETWORK_FILES["colorization"]}
    model = load_tiny_model()
    inputs, expected = data["inputs"], data["outputs"]
    with torch.no_grad():
        run = model.run(inputs["x_l"], inputs["cid"])
    assert_close(run.z, data["intermediates"]["z"], atol=2e-5, what="z")
    assert_close(run.reference, expected["ref"], atol=5e-5, what="ref")
    for size, feature in expected["warp_feat"].items():
        assert_close(run.warped[size], feature, atol=2e-3, rms=1e-4, what=f"warp_feat {size}")
    assert_close(run.ab_norm, expected["fake_ab"], atol=2e-3, rms=1e-4, what="fake_ab")
    rgb = lab.model_output_to_rgb(inputs["x_l"], run.ab_norm)
    assert_close(rgb, expected["fake_rgb"], atol=5e-3, what="fake_rgb")
    full_l = inputs["x_l_full_res"]
    full_ab = F.interpolate(run.ab_norm, size=full_l.shape[-2:], mode="bicubic",
                            align_corners=False)
    assert_close(lab.model_output_to_rgb(full_l, full_ab), expected["fake_rgb_full_res"],
                 atol=5e-3, what="fake_rgb_full_res")
