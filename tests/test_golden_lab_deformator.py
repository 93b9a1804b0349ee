"""Golden cases of the two pure functions: CIELAB conversion and the deformator."""

import pytest
import torch

from gcp_colorize.model import deformator, lab
from golden_cases import assert_close, load_case


def test_lab_conversion():
    data = load_case("lab_conversion.pt")
    out = data["outputs"]
    lab_values = lab.rgb_to_lab((data["inputs"]["x_rgb"] + 1) / 2)
    assert_close(lab_values, out["lab"], atol=3e-4, what="lab")
    x_l, ab_norm = lab.normalize_lab(lab_values)
    assert_close(x_l, out["x_l"], atol=5e-6, what="x_l")
    assert_close(ab_norm, out["ab_norm"], atol=5e-6, what="ab_norm")
    assert_close(lab.model_output_to_rgb(out["x_l"], out["ab_norm"]), out["rgb01_roundtrip"],
                 atol=5e-5, what="round trip")
    assert_close(lab.lab_to_rgb(data["inputs"]["lab_samples"]), out["rgb01_from_lab_samples"],
                 atol=5e-5, what="rgb from lab samples (clipping)")


def test_lab_float64_matches_official_float64():
    data = load_case("lab_conversion.pt")
    out = data["outputs_f64"]
    lab_values = lab.rgb_to_lab((data["inputs"]["x_rgb"].double() + 1) / 2)
    assert lab_values.dtype == torch.float64
    assert_close(lab_values, out["lab"], atol=1e-9, what="lab f64")


@pytest.mark.parametrize("scale", ["scale0.001", "scale0.1"])
def test_deformator_directions_and_shifts(scale):
    data = load_case("deformator.pt")
    config = data["config"]
    log_mat_half = data["inputs"][scale]["log_mat_half"]
    matrix = deformator.direction_matrix(log_mat_half)
    expected = data["outputs"][scale]
    assert_close(matrix, expected["direction_matrix_official_pade13"], atol=5e-6,
                 what="direction matrix")
    assert list(deformator.OFFICIAL_STEPS) == pytest.approx(config["shift_values"], abs=1e-12)
    shifts = torch.stack([torch.stack([deformator.official_shift(matrix, k, s, 120)
                                       for s in deformator.OFFICIAL_STEPS])
                          for k in config["directions"]])
    assert_close(shifts, expected["shifts"], atol=5e-5, what="shifts")

    f64 = data["outputs"][f"{scale}_f64"]
    assert_close(deformator.direction_matrix(log_mat_half.double()),
                 f64["direction_matrix_linalg_matrix_exp"], atol=1e-12, what="f64 matrix")
    named = deformator.NamedDirections.from_official(log_mat_half, dim_z=120)
    assert named.names == list(deformator.OFFICIAL_COLOUR_DIRECTIONS)
    for name, k in deformator.OFFICIAL_COLOUR_DIRECTIONS.items():
        index = config["directions"].index(k)
        assert_close(named.shift(name, 16.0), f64["shifts"][index, -1], atol=1e-5,
                     what=f"named {name}")
