"""Host-independent plugin logic the Krita plugin relies on (core/hostcore.py), no Krita needed."""

import pytest

from gcp_colorize.core import hostcore
from gcp_colorize.core.hostcore import (ColorizeSettings, HostError, PixelFormat, Rect, check_pixel_cap,
                                        colorize_area, krita_pixel_format, result_layer_name, selection_mask)
from gcp_colorize.core.protocol import PixelImage, ResultImage


@pytest.mark.parametrize("model, depth, expected", [
    ("RGBA", "U8", PixelFormat("BGRA", "uint8")),
    ("RGBA", "U16", PixelFormat("BGRA", "uint16")),
    ("RGBA", "F16", PixelFormat("RGBA", "float16")),
    ("RGBA", "F32", PixelFormat("RGBA", "float32")),
    ("GRAYA", "U8", PixelFormat("GRAYA", "uint8")),
    ("GRAYA", "U16", PixelFormat("GRAYA", "uint16")),
    ("GRAYA", "F16", PixelFormat("GRAYA", "float16")),
    ("GRAYA", "F32", PixelFormat("GRAYA", "float32")),
])
def test_krita_formats_map_to_the_channel_order_krita_stores(model, depth, expected):
    fmt = krita_pixel_format(model, depth)
    assert fmt == expected
    assert fmt.bytes_per_pixel == {"U8": 1, "U16": 2, "F16": 2, "F32": 4}[depth] * (2 if model == "GRAYA" else 4)


@pytest.mark.parametrize("model, words", [("CMYKA", "CMYK"), ("LABA", "L*a*b*"), ("XYZA", "XYZ"), ("", "unknown")])
def test_unreadable_colour_models_get_a_message_that_says_what_to_do(model, words):
    with pytest.raises(HostError, match="Convert Layer Color Space") as info:
        krita_pixel_format(model, "U8")
    assert words in str(info.value)


def test_unknown_depth_is_refused():
    with pytest.raises(HostError, match="channel depth 'F64'"):
        krita_pixel_format("RGBA", "F64")


def test_area_is_layer_clipped_to_canvas_and_selection_bounds():
    canvas = Rect(0, 0, 100, 80)
    assert colorize_area(Rect(-10, 5, 50, 200), canvas, None) == Rect(0, 5, 40, 75)
    assert colorize_area(Rect(0, 0, 100, 80), canvas, Rect(20, 30, 10, 10)) == Rect(20, 30, 10, 10)
    assert colorize_area(Rect(25, 0, 10, 80), canvas, Rect(20, 30, 10, 10)) == Rect(25, 30, 5, 10)


@pytest.mark.parametrize("layer, selection, message", [
    (Rect(0, 0, 0, 0), None, "empty"),
    (Rect(200, 0, 10, 10), None, "inside the canvas"),
    (Rect(0, 0, 10, 10), Rect(50, 50, 5, 5), "does not overlap"),
])
def test_empty_areas_are_explained(layer, selection, message):
    with pytest.raises(HostError, match=message):
        colorize_area(layer, Rect(0, 0, 100, 100), selection)


def test_pixel_cap_refuses_with_the_size_and_the_limit():
    check_pixel_cap(Rect(0, 0, 4096, 4096))
    with pytest.raises(HostError, match="4097 x 4096 = 16,781,312 pixels; the limit is 16,777,216 pixels"):
        check_pixel_cap(Rect(0, 0, 4097, 4096))
    with pytest.raises(HostError, match="10 x 10 = 100 pixels; the limit is 99 pixels"):
        check_pixel_cap(Rect(0, 0, 10, 10), max_pixels=99)


def test_selection_mask_is_dropped_when_everything_is_selected_and_kept_when_soft():
    area = Rect(3, 4, 3, 2)
    assert selection_mask(bytes([255] * 6), area) is None
    soft = bytes([0, 64, 128, 255, 255, 255])
    mask = selection_mask(soft, area)
    assert (mask.width, mask.height, mask.layout, mask.dtype) == (3, 2, "GRAY", "uint8")
    assert bytes(mask.data) == soft
    with pytest.raises(HostError, match="Nothing is selected"):
        selection_mask(bytes(6), area)
    with pytest.raises(ValueError, match="5 bytes"):
        selection_mask(bytes(5), area)


def test_settings_become_request_options():
    settings = ColorizeSettings(alternatives=2, seed=7, class_choice=" goldfinch ", walk_direction="zoom",
                                walk_amount=1.5, variation=2.5)
    assert settings.request_options() == {"alternatives": 2, "seed": 7, "class_choice": "goldfinch",
                                          "class_alternatives": True, "walk": ("zoom", 1.5), "variation": 2.5}
    assert ColorizeSettings(class_choice="Auto", seed=1).request_options()["class_choice"] == "auto"
    assert ColorizeSettings(class_choice="11", seed=1).request_options()["class_choice"] == 11
    # A direction without an amount (or the other way round) is no walk.
    assert ColorizeSettings(walk_direction="zoom", walk_amount=0.0).request_options()["walk"] is None
    assert ColorizeSettings(walk_direction="  ", walk_amount=2.0).request_options()["walk"] is None


@pytest.mark.parametrize("change, message", [
    ({"alternatives": -1}, "alternatives"), ({"alternatives": 65}, "alternatives"),
    ({"seed": -1}, "seed"), ({"seed": 2**31}, "seed"), ({"output_mode": "sepia"}, "output mode"),
    ({"variation": -1.0}, "variation"), ({"variation": 4.25}, "variation"), ({"variation": float("nan")}, "variation"),
])
def test_bad_settings_are_refused(change, message):
    with pytest.raises(HostError, match=message):
        ColorizeSettings(**change).request_options()


def test_settings_round_trip_through_text_and_survive_garbage():
    settings = ColorizeSettings(alternatives=5, seed=123, class_choice="tabby, tabby cat", class_alternatives=True,
                                walk_direction="color", walk_amount=-0.25, variation=0.75, output_mode="chroma")
    assert ColorizeSettings.from_strings(settings.to_strings()) == settings
    restored = ColorizeSettings.from_strings({"alternatives": "many", "seed": "12", "output_mode": "sepia",
                                              "variation": "wide"})
    assert (restored.alternatives, restored.seed, restored.output_mode, restored.variation) == (3, 12, "color", 1.0)


def test_new_seeds_differ_and_fit_a_spin_box():
    seeds = {hostcore.new_seed() for _ in range(20)}
    assert len(seeds) > 1 and all(0 <= s <= hostcore.MAX_SEED for s in seeds)


def test_output_layer_names_carry_the_short_class_and_a_given_seed():
    assert result_layer_name("colorized", "goldfinch, Carduelis carduelis") == "Colorized (goldfinch)"
    assert result_layer_name("alternative 2", "tabby, tabby cat", seed=9) == "Alternative 2 (seed 9, tabby)"
    assert result_layer_name("alternative 1", "", seed=3) == "Alternative 1 (seed 3)"
    assert result_layer_name("colorized", "") == "Colorized"
    assert result_layer_name("colorized", "tabby", walk=("saturation", 2.0)) == "Colorized (saturation +2, tabby)"
    assert result_layer_name("alternative 1", "", seed=3, variation=0.5) == "Alternative 1 (seed 3, variation 0.5)"


def test_only_random_alternatives_name_their_seed_and_variation():
    results = [ResultImage(PixelImage(bytes(3), 1, 1, "RGB", "uint8"), label, 5, 1, "goldfish")
               for label in ("colorized", "alternative 1")]
    names = hostcore.result_layer_names
    random = {"class_alternatives": False}
    assert names(results, {**random, "walk": None, "variation": 1.0}) == [
        "Colorized (goldfish)", "Alternative 1 (seed 5, goldfish)"]
    assert names(results, {**random, "walk": ("warmth", -1.5), "variation": 2.0}) == [
        "Colorized (warmth -1.5, goldfish)", "Alternative 1 (warmth -1.5, seed 5, variation 2, goldfish)"]
    # Class alternatives (the default) do not move the latent code: neither seed nor variation made them.
    assert names(results, {"class_alternatives": True, "variation": 2.0}) == [
        "Colorized (goldfish)", "Alternative 1 (goldfish)"]
    assert names(results, {"alternatives": 1, "seed": 5}) == ["Colorized (goldfish)", "Alternative 1 (goldfish)"]
    assert hostcore.result_group_name("Photo") == "GCP Colorize: Photo"


@pytest.mark.parametrize("fmt", [PixelFormat("BGRA", "uint8"), PixelFormat("BGRA", "uint16"),
                                 PixelFormat("RGBA", "float16"), PixelFormat("RGBA", "float32"),
                                 PixelFormat("GRAYA", "uint16")])
def test_clear_unselected_zeroes_alpha_only_where_nothing_is_selected(fmt):
    import struct
    code = {"uint8": "B", "uint16": "H", "float16": "e", "float32": "f"}[fmt.dtype]
    channels = fmt.bytes_per_pixel // struct.calcsize(code)
    one = {"uint8": 255, "uint16": 65535}.get(fmt.dtype, 1.0)
    values = [[one * (p + c + 1) / 16 for c in range(channels - 1)] + [one * (p + 1) / 8] for p in range(6)]
    if code in "BH":
        values = [[round(v) for v in px] for px in values]
    pixels = bytearray(b"".join(struct.pack("<" + code * channels, *px) for px in values))
    mask = selection_mask(bytes([0, 1, 255, 0, 128, 0]), Rect(0, 0, 3, 2))
    hostcore.clear_unselected(pixels, fmt, mask)
    after = [list(struct.unpack_from("<" + code * channels, pixels, i * fmt.bytes_per_pixel)) for i in range(6)]
    for i, (before, now) in enumerate(zip(values, after)):
        assert now[:-1] == pytest.approx(before[:-1])          # colour untouched
        expected_alpha = 0 if bytes(mask.data)[i] == 0 else before[-1]
        assert now[-1] == pytest.approx(expected_alpha)


def test_clear_unselected_refuses_mismatched_buffers():
    mask = selection_mask(bytes([0, 255]), Rect(0, 0, 2, 1))
    with pytest.raises(ValueError, match="no alpha"):
        hostcore.clear_unselected(bytearray(6), PixelFormat("RGB", "uint8"), mask)
    with pytest.raises(ValueError, match="7 bytes"):
        hostcore.clear_unselected(bytearray(7), PixelFormat("BGRA", "uint8"), mask)
