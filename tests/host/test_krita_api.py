"""API-level test inside real Krita (kritarunner, no X server): the installed plugin's
document glue reads every layer format, sends it to a real backend and inserts the
results; pixels are checked here with numpy (krita_api_script.py only records)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from krita_harness import (HOST_DIR, decode_krita, gray_photo, install_plugin, lab, make_home, require_krita,
                           run_kritarunner)

from gcp_colorize.core.hostcore import result_layer_name

pytestmark = pytest.mark.host

PHOTO_SIZE = (80, 56)


@pytest.fixture(scope="module")
def krita_run(request, tmp_path_factory):
    require_krita()  # before starting a backend for nothing
    tiny_backend = request.getfixturevalue("tiny_backend")
    root = tmp_path_factory.mktemp("krita-api")
    home = make_home(root / "home", Path(tiny_backend.env["XDG_RUNTIME_DIR"]))
    install_plugin(home)
    work = root / "work"
    work.mkdir()
    (work / "photo.gray").write_bytes(gray_photo(*PHOTO_SIZE).tobytes())
    (work / "photo.json").write_text(json.dumps({"width": PHOTO_SIZE[0], "height": PHOTO_SIZE[1]}))
    result = run_kritarunner(home, HOST_DIR, "krita_api_script", "main", [str(work)], work / "result.json")
    result["work"] = work
    return result


def layer_pixels(run: dict, layer: dict, doc: dict, model: str | None = None):
    """(rgb, alpha, linear) of a dumped layer over the whole canvas."""
    raw = (run["work"] / layer["file"]).read_bytes()
    rgb, alpha = decode_krita(raw, doc["width"], doc["height"], model or layer["model"], layer["depth"])
    return rgb, alpha, "g10" in layer["profile"]


def check_result_group(run: dict, case: dict, alternatives: int, mode: str) -> None:
    """Structure: a group right above the source, main result on top and visible."""
    assert case["source_identical"], "the source layer changed"
    root = case["root_order"]
    assert root.index(case["group"]["name"]) == root.index("Photo") + 1, root
    assert case["group"]["type"] == "grouplayer" and case["group"]["parent_is_root"]
    assert case["group"]["name"] == "GCP Colorize: Photo"
    assert case["group"]["pass_through"] == (mode == "chroma")
    children = case["children"]  # bottom to top
    assert len(children) == 1 + alternatives
    # class alternatives (the client's default): no seed in the names
    expected = [result_layer_name(r["label"], r["class_name"]) for r in case["results"]]
    assert [c["name"] for c in reversed(children)] == expected
    assert expected[0].startswith("Colorized (") and expected[1].startswith("Alternative 1 (")
    assert [c["visible"] for c in reversed(children)] == [True] + [False] * alternatives
    assert {c["blending"] for c in children} == {"color" if mode == "chroma" else "normal"}
    x, y, w, h = case["area"]
    for child in children:
        assert child["type"] == "paintlayer"
        bx, by, bw, bh = child["bounds"]
        assert x <= bx and y <= by and bx + bw <= x + w and by + bh <= y + h, (child["bounds"], case["area"])


def check_pixels(run: dict, case: dict) -> dict:
    """Luminance kept, chroma added, alpha kept, nothing outside the area; returns stats."""
    doc = case["doc"]
    src_rgb, src_alpha, src_linear = layer_pixels(run, case["source"], doc)
    src_lab = lab(src_rgb, src_linear)
    x, y, w, h = case["area"]
    inside = np.zeros(src_alpha.shape, bool)
    inside[y:y + h, x:x + w] = True
    opaque = inside & (src_alpha > 0.5)
    stats = {}
    chromas = []
    for child in reversed(case["children"]):  # main result first
        rgb, alpha, linear = layer_pixels(run, child, doc)
        assert linear == ("g10" in doc["profile"])  # results are in the document's colour space
        result_lab = lab(rgb, linear)
        delta_l = np.abs(result_lab[..., 0] - src_lab[..., 0])[opaque]
        assert delta_l.mean() < 0.6 and delta_l.max() < 3.0, (child["name"], delta_l.mean(), delta_l.max())
        assert np.abs(alpha - src_alpha)[inside].max() < 1.5 / 255, child["name"]
        assert not alpha[~inside].any(), f"{child['name']} has pixels outside the colorized area"
        chroma = np.hypot(result_lab[..., 1], result_lab[..., 2])[opaque]
        chromas.append(result_lab[..., 1:][opaque])
        stats[child["name"]] = {"dL_mean": float(delta_l.mean()), "chroma_mean": float(chroma.mean())}
    main_chroma = np.hypot(*np.moveaxis(chromas[0], -1, 0))
    assert main_chroma.mean() > 2.0, f"the colorized layer is nearly gray: {stats}"
    source_chroma = np.hypot(src_lab[..., 1], src_lab[..., 2])[opaque]
    assert source_chroma.max() < 1.0  # the source really was gray
    for alternative in chromas[1:]:
        assert np.abs(alternative - chromas[0]).mean() > 0.5, f"an alternative equals the main result: {stats}"
    return stats


CASES = ["RGBA-U8-srgb", "RGBA-U16-linear", "RGBA-F16-srgb", "RGBA-F32-linear",
         "GRAYA-U8-srgb", "GRAYA-U16-linear", "GRAYA-F16-linear", "GRAYA-F32-srgb"]


@pytest.mark.parametrize("tag", CASES)
def test_every_layer_format_is_colorized_into_a_new_group(krita_run, tag):
    case = krita_run["cases"][tag]
    model, depth = tag.split("-")[:2]
    assert case["source"]["model"] == model and case["source"]["depth"] == depth
    assert case["doc"]["model"] == "RGBA" and case["doc"]["depth"] == depth
    # The photo sits at (8, 6); its transparent last row is not part of the layer's bounds.
    assert case["area"] == [8, 6, PHOTO_SIZE[0], PHOTO_SIZE[1] - 1]
    # Travels sRGB-encoded in Krita's own channel order at the layer's depth (16-bit gray
    # as float: Krita's integer Gray -> RGB conversion is coarse).
    wire_depth = "F32" if (model, depth) == ("GRAYA", "U16") else depth
    assert case["wire"] == {"U8": ["BGRA", "uint8"], "U16": ["BGRA", "uint16"], "F16": ["RGBA", "float16"],
                            "F32": ["RGBA", "float32"]}[wire_depth]
    check_result_group(krita_run, case, alternatives=2, mode=case["mode"])
    check_pixels(krita_run, case)


def test_soft_selection_blends_and_leaves_the_outside_transparent(krita_run):
    case = krita_run["selection"]
    check_result_group(krita_run, case, alternatives=1, mode="color")
    doc = case["doc"]
    sx, sy, sw, sh = case["selection_bounds"]
    # Bounded by the selection (and the layer: the selection starts left of the photo).
    assert case["area"] == [max(sx, 8), sy, sx + sw - max(sx, 8), sh]
    mask = np.frombuffer((krita_run["work"] / "selection-mask.raw").read_bytes(), np.uint8)
    mask = mask.reshape(doc["height"], doc["width"]) / 255.0
    src_rgb, src_alpha, _ = layer_pixels(krita_run, case["source"], doc)
    main = case["children"][-1]
    rgb, alpha, _ = layer_pixels(krita_run, main, doc)
    result_lab, src_lab = lab(rgb, False), lab(src_rgb, False)
    layer = src_alpha > 0.5
    unselected = layer & (mask == 0)
    assert unselected.any() and not alpha[mask == 0].any(), "pixels outside the selection are not transparent"
    selected = (mask > 0) & layer
    assert np.abs(alpha - src_alpha)[selected].max() < 1.5 / 255
    assert np.abs(result_lab[..., 0] - src_lab[..., 0])[selected].mean() < 0.6
    chroma = np.hypot(result_lab[..., 1], result_lab[..., 2])
    full, soft = chroma[(mask == 1) & layer].mean(), chroma[(mask > 0.2) & (mask < 0.6) & layer].mean()
    assert full > 2.0 and soft < 0.8 * full, (full, soft)


@pytest.mark.parametrize("name, words", [
    ("CMYKA", "image is in the CMYK colour model"), ("LABA", "image is in the L*a*b* colour model"),
    ("grayscale image", "image is in the grayscale colour model"),
    ("CMYK layer", "layer is in the CMYK colour model"), ("group layer", "is a group layer; select a paint layer"),
    ("vector layer", "is a vector layer"), ("empty layer", "is empty"),
    ("too large", "the limit is 1,000 pixels"), ("selection outside the layer", "does not overlap"),
])
def test_unreadable_input_gets_a_clear_message_and_changes_nothing(krita_run, name, words):
    refusal = krita_run["refusals"][name]
    assert refusal["message"] is not None, f"{name} was not refused"
    assert words in refusal["message"]
    assert refusal["unchanged"]
