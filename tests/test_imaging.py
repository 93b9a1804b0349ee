"""Pixel conversions and the full-resolution pipeline (imaging.py)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gcp_colorize import imaging
from gcp_colorize.core.protocol import PixelImage
from gcp_colorize.model.lab import rgb_to_lab

torch.set_num_threads(1)
RNG = np.random.default_rng(1)
SAMPLE_MAX = {"uint8": 255, "uint16": 65535}
ORDER = {"RGBA": (0, 1, 2), "BGRA": (2, 1, 0), "RGB": (0, 1, 2)}


def stored(reference: np.ndarray, alpha: np.ndarray, layout: str, dtype: str, pad: int) -> PixelImage:
    """Pack a float RGB reference into a padded buffer by hand (not through imaging)."""
    height, width = reference.shape[:2]
    gray = reference[..., 0]
    planes = {"RGBA": [*(reference[..., c] for c in ORDER["RGBA"]), alpha],
              "BGRA": [*(reference[..., c] for c in ORDER["BGRA"]), alpha],
              "RGB": [reference[..., c] for c in range(3)],
              "GRAY": [gray], "GRAYA": [gray, alpha]}[layout]
    samples = np.stack(planes, -1)
    if dtype in SAMPLE_MAX:
        samples = np.rint(samples * SAMPLE_MAX[dtype])
    samples = samples.astype(imaging.NUMPY_DTYPES[dtype])
    row = samples.reshape(height, -1).view(np.uint8)
    padded = np.zeros((height, row.shape[1] + pad), np.uint8)
    padded[:, :row.shape[1]] = row
    return PixelImage(padded.tobytes(), width, height, layout, dtype, row.shape[1] + pad)


@pytest.mark.parametrize("layout", ["RGBA", "BGRA", "RGB", "GRAY", "GRAYA"])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16", "float32"])
def test_decode_every_layout_and_dtype_with_row_padding(layout, dtype):
    reference = RNG.random((5, 7, 3)).astype(np.float32)
    if layout.startswith("GRAY"):
        reference[...] = reference[..., :1]
    alpha = RNG.random((5, 7)).astype(np.float32)
    image = stored(reference, alpha, layout, dtype, pad=8)
    decoded = imaging.decode(image)
    tolerance = {"uint8": 0.5 / 255, "uint16": 0.5 / 65535, "float16": 1e-3, "float32": 1e-7}[dtype]
    assert decoded.rgb.shape == (5, 7, 3) and decoded.rgb.dtype == np.float32
    np.testing.assert_allclose(decoded.rgb, reference, atol=tolerance)
    assert (decoded.alpha is not None) == (layout in ("RGBA", "BGRA", "GRAYA"))


def test_bgra_is_blue_green_red_alpha():
    pixel = PixelImage(bytes([10, 20, 250, 128]), 1, 1, "BGRA", "uint8")
    assert np.allclose(imaging.decode(pixel).rgb[0, 0] * 255, [250, 20, 10])


@pytest.mark.parametrize("layout, out_layout", [("RGBA", "RGBA"), ("BGRA", "BGRA"), ("RGB", "RGB"),
                                                ("GRAY", "RGB"), ("GRAYA", "RGBA")])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16", "float32"])
def test_encode_keeps_dtype_and_alpha_bits(layout, out_layout, dtype):
    reference = RNG.random((4, 6, 3)).astype(np.float32)
    alpha = RNG.random((4, 6)).astype(np.float32)
    decoded = imaging.decode(stored(reference, alpha, layout, dtype, pad=4))
    colour = RNG.random((4, 6, 3)).astype(np.float32)
    out = imaging.encode(colour, decoded)
    assert (out.layout, out.dtype, out.width, out.height) == (out_layout, dtype, 6, 4)
    again = imaging.decode(out)
    np.testing.assert_allclose(again.rgb, colour, atol={"uint8": 0.5 / 255, "uint16": 1e-5,
                                                        "float16": 1e-3, "float32": 0}[dtype])
    if decoded.alpha is not None:
        assert np.ascontiguousarray(again.alpha).tobytes() == np.ascontiguousarray(decoded.alpha).tobytes()


def test_integer_round_trip_is_exact():
    pixels = RNG.integers(0, 65536, (9, 11, 4), dtype=np.uint16)
    decoded = imaging.decode(PixelImage(pixels.tobytes(), 11, 9, "RGBA", "uint16"))
    assert bytes(imaging.encode(decoded.rgb, decoded).data) == pixels.tobytes()


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("where", [(1, 2, 0), (0, 0, 3)])  # colour channel, alpha channel
def test_non_finite_floats_are_refused(dtype, where):
    pixels = np.full((3, 4, 4), 0.5, dtype)
    pixels[where] = np.nan
    with pytest.raises(imaging.NonFiniteInput):
        imaging.decode(PixelImage(pixels.tobytes(), 4, 3, "RGBA", dtype))
    mask = np.full((3, 4), np.inf, dtype)
    with pytest.raises(imaging.NonFiniteInput):
        imaging.decode_mask(PixelImage(mask.tobytes(), 4, 3, "GRAY", dtype))


def test_float_values_outside_the_range_are_clipped():
    pixels = np.array([[[-0.5, 2.0, 0.25]]], np.float32)
    assert imaging.decode(PixelImage(pixels.tobytes(), 1, 1, "RGB", "float32")).rgb.tolist() == [[[0.0, 1.0, 0.25]]]


def test_fit_square_keeps_the_aspect_and_mirrors_the_rest():
    image = torch.zeros(1, 1, 40, 100)
    image[..., :, 30:35] = 1.0  # a vertical bar at 30-35 % of the width
    square, place = imaging.fit_square(image, 64)
    assert square.shape == (1, 1, 64, 64)
    assert (place.width, place.height) == (64, 26) and place.top == 19 and place.left == 0
    inside = imaging.crop_placed(square, place)
    profile = inside[0, 0].mean(0)
    assert 19 <= int(profile.argmax()) <= 22 and profile[40:].max() < 0.01  # bar stayed where it was
    torch.testing.assert_close(square[0, 0, place.top - 1], square[0, 0, place.top])  # mirrored edge
    torch.testing.assert_close(square[0, 0, place.top - 3], square[0, 0, place.top + 2])


def test_fit_square_margin_mirrors_the_image_on_every_side():
    image = torch.rand(1, 3, 50, 100)
    square, place = imaging.fit_square(image, 64, margin=4)
    assert square.shape == (1, 3, 64, 64)
    assert (place.width, place.height, place.left, place.top) == (56, 28, 4, 18)
    inside = imaging.crop_placed(square, place)
    torch.testing.assert_close(square[..., place.top:place.top + place.height, 3], inside[..., 0])
    torch.testing.assert_close(square[..., place.top:place.top + place.height, 60], inside[..., -1])
    assert imaging.border_margin(128) == 4 and imaging.border_margin(256) == 8


@pytest.mark.parametrize("margin", [-1, 32, 40])
def test_fit_square_rejects_a_margin_without_room(margin):
    with pytest.raises(ValueError, match="margin"):
        imaging.fit_square(torch.rand(1, 3, 8, 8), 64, margin=margin)


@pytest.mark.parametrize("height, width", [(1, 1), (2, 300), (300, 1), (64, 64), (7, 5)])
def test_fit_square_any_shape(height, width):
    image = torch.rand(2, 3, height, width)
    square, place = imaging.fit_square(image, 32)
    assert square.shape == (2, 3, 32, 32)
    assert imaging.crop_placed(square, place).shape[-2:] == (place.height, place.width)
    assert abs(place.width / place.height - width / height) <= max(width / height, 1) / min(place.height, place.width)


def guided(chroma_low, guide_low, lightness):
    """Guided upsampling of all rows at once."""
    height = lightness.shape[-2]
    return imaging.chroma_at(imaging.guide_coefficients(chroma_low, guide_low), lightness, slice(0, height), height)


def test_guided_upsampling_puts_colour_edges_on_luminance_edges():
    size, low, edge = 512, 64, 261  # the edge is not on the low-resolution grid
    lightness = torch.full((1, 1, size, size), 30.0)
    lightness[..., edge:] = 80.0
    ideal = torch.where(lightness > 55, 40.0, -40.0).expand(1, 2, size, size)
    guide_low = F.interpolate(lightness, size=(low, low), mode="area")
    chroma_low = F.interpolate(ideal, size=(low, low), mode="area")  # what a perfect model gives at low res
    upsampled = guided(chroma_low, guide_low, lightness)
    naive = F.interpolate(chroma_low, size=(size, size), mode="bilinear")
    assert upsampled.shape == (1, 2, size, size)
    assert (upsampled - ideal).abs().max() < 4.0 < (naive - ideal).abs().max()
    # A blurry prediction still gets a sharp edge exactly where L has one.
    blurry = F.avg_pool2d(chroma_low, 3, 1, 1, count_include_pad=False)
    steps = guided(blurry, guide_low, lightness)[0, 0, size // 2].diff()
    assert int(steps.abs().argmax()) == edge - 1 and steps[edge - 1] > 50
    assert F.interpolate(blurry, size=(size, size), mode="bilinear")[0, 0, size // 2].diff().abs().max() < 10


def test_coefficients_are_sampled_like_bilinear_interpolation_in_any_band():
    coefficients = torch.randn(2, 4, 7, 9)
    zero = torch.zeros(1, 1, 50, 31)  # with L = 0 only the offsets remain
    whole = imaging.chroma_at(coefficients, zero, slice(0, 50), 50)
    torch.testing.assert_close(whole, F.interpolate(coefficients[:, 2:], size=(50, 31), mode="bilinear"))
    band = imaging.chroma_at(coefficients, zero[..., 13:29, :], slice(13, 29), 50)
    torch.testing.assert_close(band, whole[..., 13:29, :])


def test_colorized_rgb_in_bands_keeps_lightness(monkeypatch):
    monkeypatch.setattr(imaging, "BAND_PIXELS", 100)  # many bands, one row each
    lightness = (RNG.random((23, 40)) * 100).astype(np.float32)
    coefficients = torch.randn(1, 4, 5, 8, generator=torch.Generator().manual_seed(0)) * 60
    rgb = imaging.colorized_rgb(lightness, coefficients)
    assert rgb.shape == (23, 40, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert np.abs(imaging.lightness(rgb) - lightness).max() < 0.02
    monkeypatch.setattr(imaging, "BAND_PIXELS", 1 << 20)  # one band
    # Same values up to float32 rounding (band size changes the order of some operations).
    np.testing.assert_allclose(imaging.colorized_rgb(lightness, coefficients), rgb, atol=1e-5)


def test_in_gamut_mapping_keeps_lightness_and_hue():
    lightness = torch.rand(1, 1, 50, 60) * 100
    chroma = torch.randn(3, 2, 50, 60) * 120  # mostly impossible colours
    rgb = imaging.lab_to_rgb_in_gamut(lightness, chroma)
    assert rgb.shape == (3, 3, 50, 60) and rgb.min() >= 0 and rgb.max() <= 1
    lab = rgb_to_lab(rgb)
    assert (lab[:, :1] - lightness).abs().max() < 0.02
    kept = lab[:, 1:].norm(dim=1) > 2
    cosine = (lab[:, 1:] * chroma).sum(1) / (lab[:, 1:].norm(dim=1) * chroma.norm(dim=1))
    assert cosine[kept].min() > 0.99  # only the chroma shrank, the hue stayed
    inside = torch.tensor([[50.0], [20.0]]).view(1, 2, 1, 1)
    mild = imaging.lab_to_rgb_in_gamut(torch.full((1, 1, 1, 1), 60.0), inside)
    torch.testing.assert_close(rgb_to_lab(mild)[:, 1:], inside, atol=0.02, rtol=0)


def test_lightness_survives_8_bit_encoding():
    gray = RNG.integers(0, 256, (64, 64), dtype=np.uint8)
    decoded = imaging.decode(PixelImage(gray.tobytes(), 64, 64, "GRAY", "uint8"))
    lightness = imaging.lightness(decoded.rgb)
    out = imaging.encode(imaging.colorized_rgb(lightness, torch.randn(1, 4, 8, 8) * 60), decoded)
    back = imaging.lightness(imaging.decode(out).rgb)
    assert np.abs(back - lightness).max() < 0.6  # what rounding to 8 bits can do, no more


def test_selection_blend():
    original = np.repeat(RNG.random((20, 30, 1)).astype(np.float32), 3, -1)
    lightness = imaging.lightness(original)
    colorized = imaging.colorized_rgb(lightness, torch.tensor([0.0, 0.0, 30.0, 30.0]).view(1, 4, 1, 1))
    mask = np.zeros((20, 30), np.float32)
    mask[:, 10:20] = 0.5
    mask[:, 20:] = 1.0
    out = imaging.blend_selection(original, colorized, mask)
    assert np.array_equal(out[:, :10], original[:, :10])
    assert np.array_equal(out[:, 20:], colorized[:, 20:])
    lab = rgb_to_lab(imaging.to_tensor(out))
    assert (lab[0, 0] - torch.from_numpy(lightness)).abs().max() < 0.02
    full_chroma = rgb_to_lab(imaging.to_tensor(colorized))[0, 1:, :, 10:20]
    torch.testing.assert_close(lab[0, 1:, :, 10:20], full_chroma / 2, atol=0.05, rtol=0)  # halfway from gray
