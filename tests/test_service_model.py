"""The real Colorizer (classifier + GCP model, random:tiny weights) in process and behind
a real `gcp-colorize serve` process. Slow: every model pass takes seconds on a CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gcp_colorize import imaging
from gcp_colorize.colorizer import (CLASS_CANDIDATES, Cancelled, Colorizer, UnknownChoice, colour_differences,
                                   likely_and_distinct)
from gcp_colorize.core.protocol import ErrorCode, PixelImage
from gcp_colorize.evaluation.metrics import ciede2000
from gcp_colorize.model.lab import rgb_to_lab, rgb_to_model_input
from service_harness import gray_gradient, running_backend

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def colorizer():
    torch.set_num_threads(2)
    return Colorizer("random:tiny", "cpu")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    gray = gray_gradient(90, 50).astype(np.float32) / 255
    return np.repeat(gray[..., None], 3, -1)


@pytest.fixture(scope="module")
def first_run(colorizer, photo):
    return colorizer.colorize(photo, alternatives=1, seed=3, class_alternatives=False)


def lightness(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(imaging.lightness(rgb))


def test_results_keep_size_and_lightness(colorizer, photo, first_run):
    assert colorizer.info == {"device": "cpu", "weights": "random:tiny", "config": "tiny", "native_resolution": 256,
                              "directions": []}
    assert [r.label for r in first_run] == ["colorized", "alternative 1"]
    for result in first_run:
        assert result.rgb.shape == photo.shape and result.rgb.dtype == np.float32
        assert (lightness(result.rgb) - lightness(photo)).abs().max() < 0.05
        assert result.seed == 3 and isinstance(result.class_name, str) and 0 <= result.class_index < 1000
        lab = rgb_to_lab(imaging.to_tensor(result.rgb))
        assert lab[:, 1:].abs().max() > 1  # the random model still puts colour in
    assert not np.array_equal(first_run[0].rgb, first_run[1].rgb)


def test_alternatives_are_reproducible_from_the_seed(colorizer, photo, first_run):
    again = colorizer.colorize(photo, alternatives=1, seed=3, class_alternatives=False)
    for a, b in zip(first_run, again):
        np.testing.assert_array_equal(a.rgb, b.rgb)


def test_variation_scales_the_alternatives_latent_noise(colorizer, photo, first_run):
    still = colorizer.colorize(photo, alternatives=1, seed=3, variation=0.0, class_alternatives=False)
    np.testing.assert_array_equal(still[0].rgb, still[1].rgb)
    np.testing.assert_array_equal(still[0].rgb, first_run[0].rgb)  # the main result does not move
    shifts = {}
    for variation in (1.0, 3.0):
        seen = []
        hook = colorizer.model.register_forward_pre_hook(lambda module, args: seen.append(args[2].clone()))
        try:
            colorizer.colorize(photo, alternatives=1, seed=3, variation=variation, class_alternatives=False)
        finally:
            hook.remove()
        shifts[variation] = seen
    assert not shifts[1.0][0].any() and shifts[1.0][1].abs().mean() > 0.5  # N(0, I) for the alternative
    torch.testing.assert_close(shifts[3.0][1], 3 * shifts[1.0][1])


def test_likely_and_distinct_walks_down_the_ranking_then_takes_the_farthest():
    positions = np.array([0.0, 1.0, 10.0, 11.0, 5.0])   # candidates in likelihood order
    differences = np.abs(positions[:, None] - positions[None, :])
    # 1 is too close to 0; 10 joins; 11 is too close to 10; 5 is 5 from both.
    assert likely_and_distinct(differences, 3, 4.0) == [0, 2, 4]
    assert likely_and_distinct(differences, 2, 4.0) == [0, 2]      # a shorter list is a prefix
    # The ranking runs out: the rest in farthest-point order (1 and 11 tie at 1: the likelier).
    assert likely_and_distinct(differences, 4, 4.0) == [0, 2, 4, 1]
    # Nothing far enough: farthest-point order from the main result (11, then 5).
    assert likely_and_distinct(differences, 3, 20.0) == [0, 3, 4]
    assert sorted(likely_and_distinct(differences, 9, 4.0)) == [0, 1, 2, 3, 4]
    assert likely_and_distinct(np.zeros((3, 3)), 3, 4.0) == [0, 1, 2]  # ties: still distinct indices


def test_colour_differences_are_mean_ciede2000_over_the_shared_lightness():
    lightness = torch.full((1, 1, 2, 3), 50.0)
    chromas = [torch.zeros(1, 2, 2, 3), torch.full((1, 2, 2, 3), 10.0), torch.full((1, 2, 2, 3), -10.0)]
    differences = colour_differences(chromas, lightness)
    assert differences.shape == (3, 3) and (differences == differences.T).all() and (np.diag(differences) == 0).all()
    assert differences[0, 1] == pytest.approx(ciede2000(np.array([50.0, 0, 0]), np.array([50.0, 10, 10])))
    assert differences[1, 2] > differences[0, 1] > 0


def test_class_alternatives_are_likely_classes_that_colour_differently(colorizer, photo, monkeypatch):
    results = colorizer.colorize(photo, alternatives=3, class_choice="goldfish", class_alternatives=True)
    assert results[0].class_index == 1 and results[0].class_name == "goldfish"
    classes = [r.class_index for r in results]
    assert len(set(classes)) == 4
    # Each alternative is one of the CLASS_CANDIDATES most likely classes, the same whatever
    # the number asked for.
    square, _ = imaging.fit_square(imaging.to_tensor(photo), colorizer.config.resolution,
                                   imaging.border_margin(colorizer.config.resolution))
    logits, _ = colorizer.model.read_gray(colorizer.classifier, rgb_to_model_input(square))
    likely = colorizer._classes(logits[0], "goldfish", CLASS_CANDIDATES - 1)
    assert set(classes) <= set(likely)
    fewer = colorizer.colorize(photo, alternatives=1, class_choice="goldfish", class_alternatives=True)
    assert [r.class_index for r in fewer] == classes[:2]
    np.testing.assert_array_equal(fewer[1].rgb, results[1].rgb)
    # Any difference is enough: the next likely classes in order.
    monkeypatch.setattr("gcp_colorize.colorizer.DISTINCT_ENOUGH", 0.0)
    nearest = colorizer.colorize(photo, alternatives=3, class_choice="goldfish", class_alternatives=True)
    assert [r.class_index for r in nearest] == likely[:4]


@pytest.mark.parametrize("options, code", [
    (dict(class_choice="no such animal"), ErrorCode.UNKNOWN_CLASS),
    (dict(class_choice=1000), ErrorCode.UNKNOWN_CLASS),
    (dict(walk=("saturation", 2.0)), ErrorCode.UNKNOWN_DIRECTION),  # random weights have no directions
])
def test_unknown_choices(colorizer, photo, options, code):
    with pytest.raises(UnknownChoice) as info:
        colorizer.colorize(photo, alternatives=0, **options)
    assert info.value.code == code


def test_cancel_between_stages(colorizer, photo):
    stages = []
    with pytest.raises(Cancelled):
        colorizer.colorize(photo, progress=lambda stage, fraction: stages.append(stage), should_stop=lambda: True)
    assert stages == []  # stopped before any work


def test_served_by_a_real_backend_process(tmp_path):
    height, width = 40, 64
    gray = (gray_gradient(width, height).astype(np.uint32) * 257).astype("<u2")
    alpha = np.linspace(0, 65535, height * width).reshape(height, width).astype("<u2")
    mask = np.zeros((height, width), np.uint8)
    mask[:, 32:] = 255
    image = PixelImage(np.dstack([gray, alpha]).tobytes(), width, height, "GRAYA", "uint16")
    with running_backend(tmp_path, model="random:tiny") as backend, backend.client(timeout=30) as client:
        assert client.backend.weights == "random:tiny" and client.backend.native_resolution == 256
        result = client.submit(image, PixelImage(mask.tobytes(), width, height, "GRAY", "uint8"),
                               alternatives=0, seed=1).wait(timeout=600)
    out = result.main.image
    assert (out.layout, out.dtype, out.width, out.height) == ("RGBA", "uint16", width, height)
    pixels = np.frombuffer(out.data, "<u2").reshape(height, width, 4)
    assert np.array_equal(pixels[..., 3], alpha)
    assert np.array_equal(pixels[:, :32, :3], np.repeat(gray[:, :32, None], 3, -1))  # outside the selection
    source = np.repeat(gray[..., None], 3, -1).astype(np.float32) / 65535
    colour = pixels[..., :3].astype(np.float32) / 65535
    assert (lightness(colour) - lightness(source)).abs().max() < 0.05
    assert np.abs(colour[:, 32:, 0] - colour[:, 32:, 2]).max() > 0.01  # colour where selected


def test_reduced_precision_keeps_lightness_and_stays_near_fp32(colorizer, photo, first_run):
    reduced = Colorizer("random:tiny", "cpu", reduced_precision=True)
    result = reduced.colorize(photo, alternatives=0, seed=first_run[0].seed)[0]
    assert result.rgb.dtype == first_run[0].rgb.dtype
    assert torch.allclose(lightness(result.rgb), lightness(first_run[0].rgb), atol=0.5)
    ab = rgb_to_lab(torch.from_numpy(result.rgb).permute(2, 0, 1)[None].double())[0, 1:]
    ab_fp32 = rgb_to_lab(torch.from_numpy(first_run[0].rgb).permute(2, 0, 1)[None].double())[0, 1:]
    assert (ab - ab_fp32).abs().mean() < 3.0
