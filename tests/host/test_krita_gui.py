"""Full GUI test in real Krita under Xvfb: the plugin installed with `gcp-colorize
install-plugin krita` starts a real backend itself, its action and its docker colorize a
gray photo layer, and the layers, pixels, undo and cancel are checked here."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from krita_harness import (decode_krita, gray_photo, install_gui_driver, install_plugin, lab, make_home,
                           require_krita, run_krita_gui)

from gcp_colorize.core import connection
from gcp_colorize.core.hostcore import BACKEND_COMMAND_FILE

pytestmark = pytest.mark.host

CANVAS, OFFSET, PHOTO = (320, 240), (16, 12), (240, 180)
ALTERNATIVES = 2
SELECTION, SELECTION_RAMP = (40, 30, 200, 120), (100, 4)  # fully selected for x < 140, then a ramp
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def tiny_backend_command() -> list[str]:
    return [sys.executable, "-m", "gcp_colorize", "serve", "--weights", "random:tiny", "--threads", "1"]


def stop_backend(runtime: Path) -> None:
    """Stop the backend the plugin started (Krita is killed by the driver, not closed)."""
    try:
        info = connection.read(runtime / connection.APP_DIR_NAME / connection.CONNECTION_FILE_NAME)
    except connection.ConnectionFileError:
        return
    if connection.pid_alive(info.pid):
        os.kill(info.pid, signal.SIGTERM)


def run_gui(tmp_path: Path, scenarios: list[str], screenshots: Path | None = None, **settings) -> dict:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    home = make_home(tmp_path / "home", runtime)
    install_plugin(home)
    # The recorded command starts the default weights; tests use seeded random ones.
    command_file = home.plugin / BACKEND_COMMAND_FILE
    assert json.loads(command_file.read_text())["command"]
    command_file.write_text(json.dumps({"command": tiny_backend_command()}))
    work = tmp_path / "work"
    work.mkdir()
    photo = settings.pop("photo", PHOTO)
    (work / "photo.gray").write_bytes(gray_photo(*photo).tobytes())
    (work / "photo.json").write_text(json.dumps({"width": photo[0], "height": photo[1]}))
    result_path = work / "result.json"
    install_gui_driver(home, {"result": str(result_path), "work": str(work), "scenarios": scenarios,
                              "screenshots": str(screenshots) if screenshots else None, "timeout_s": 300,
                              "canvas": CANVAS, "offset": OFFSET, "alternatives": ALTERNATIVES,
                              "selection": SELECTION, "selection_ramp": SELECTION_RAMP,
                              "cancel_canvas": (1536, 1536), "cancel_alternatives": 8, **settings})
    try:
        result = run_krita_gui(home, result_path)
    finally:
        stop_backend(runtime)
    result["work"] = work
    return result


@pytest.fixture(scope="module")
def gui(tmp_path_factory):
    require_krita(gui=True)
    screenshots = SCREENSHOTS if os.environ.get("GCP_KRITA_SCREENSHOTS") == "1" else None
    return run_gui(tmp_path_factory.mktemp("krita-gui"),
                   ["start_failure", "action", "undo", "selection", "cancel"], screenshots)


def pixels(gui: dict, layer: dict, doc: dict):
    raw = (gui["work"] / layer["file"]).read_bytes()
    return decode_krita(raw, doc["width"], doc["height"], layer["model"], layer["depth"])


def test_action_is_registered(gui):
    assert gui["action"]["exists"] and "GCP" in gui["action"]["text"]


def test_docker_says_why_the_backend_cannot_start(gui):
    failure = gui["scenarios"]["start_failure"]
    assert failure["backend_state"] == "error" and failure["message_is_error"]
    assert "exited with code 5" in failure["backend_text"]
    assert failure["state_label"] == failure["backend_text"]
    assert failure["root_order"] == ["Background", "Photo"]  # nothing was added


def test_action_colorizes_the_active_layer_into_a_new_group(gui):
    run = gui["scenarios"]["action"]
    assert run["busy_after_trigger"] and not run["message_is_error"], run["message"]
    assert run["backend_state"] == "ready" and "random:tiny" in run["backend_text"]
    assert run["source_identical"], "the source layer changed"
    doc = run["document"]
    group = doc["group"]
    assert doc["root_order"] == run["before_root_order"] + [group["name"]] == ["Background", "Photo",
                                                                              "GCP Colorize: Photo"]
    children = doc["children"]  # bottom to top
    names = [c["name"] for c in reversed(children)]
    assert len(names) == 1 + ALTERNATIVES
    # class alternatives (the default): the seed made none of them, so no name carries it
    assert names[0].startswith("Colorized (") and names[1].startswith("Alternative 1 (")
    assert not any("seed" in name for name in names), names
    assert [c["visible"] for c in reversed(children)] == [True] + [False] * ALTERNATIVES
    assert {c["blending"] for c in children} == {"normal"} and not group["pass_through"]
    assert run["progress_bar"] == 1000

    src_rgb, src_alpha = pixels(gui, doc["source"], doc["doc"])
    src_lab = lab(src_rgb, False)
    area = np.zeros(src_alpha.shape, bool)
    area[OFFSET[1]:OFFSET[1] + PHOTO[1] - 1, OFFSET[0]:OFFSET[0] + PHOTO[0]] = True  # last row is transparent
    opaque = area & (src_alpha > 0.5)
    for child in children:
        assert child["bounds"][:2] == list(OFFSET), child  # same offset as the source area
        rgb, alpha = pixels(gui, child, doc["doc"])
        result_lab = lab(rgb, False)
        delta_l = np.abs(result_lab[..., 0] - src_lab[..., 0])[opaque]
        assert delta_l.mean() < 0.6 and delta_l.max() < 3.0, (child["name"], delta_l.mean(), delta_l.max())
        assert np.abs(alpha - src_alpha).max() < 1.5 / 255, child["name"]  # alpha kept, nothing outside
        assert np.hypot(result_lab[..., 1], result_lab[..., 2])[opaque].mean() > 2.0, f"{child['name']} is gray"


def test_ui_stays_responsive_during_the_job(gui):
    run = gui["scenarios"]["action"]
    # The job ran (backend start + colorization) for seconds; the UI thread never stalled.
    assert run["wall_s"] > 1.0 and run["worst_ui_gap_s"] < 0.5, (run["wall_s"], run["worst_ui_gap_s"])


def test_the_insertion_is_one_undo_step(gui):
    run = gui["scenarios"]["action"]
    assert run["after_undo"] == run["before_root_order"]
    assert run["after_redo"] == run["document"]["root_order"]
    assert run["after_redo_children"] == [c["name"] for c in run["document"]["children"]]
    assert run["two_undos"] == ["Background"]  # the next step back is the photo, nothing hidden in between


def test_soft_selection_in_chroma_mode(gui):
    run = gui["scenarios"]["selection"]
    assert not run["message_is_error"], run["message"]
    assert run["source_identical"]
    doc = run["document"]
    assert doc["group"]["pass_through"]
    children = doc["children"]
    assert len(children) == 2 and {c["blending"] for c in children} == {"color"}
    width, height = doc["doc"]["width"], doc["doc"]["height"]
    mask = np.frombuffer((gui["work"] / "selection-mask.raw").read_bytes(), np.uint8).reshape(height, width) / 255
    src_rgb, src_alpha = pixels(gui, doc["source"], doc["doc"])
    rgb, alpha = pixels(gui, children[-1], doc["doc"])
    layer = src_alpha > 0.5
    assert (layer & (mask == 0)).any() and not alpha[mask == 0].any(), "not transparent outside the selection"
    x, y, w, h = run["selection_bounds"]
    assert children[-1]["bounds"][:2] == [x, y]  # the area is the selection's bounds
    result_lab, src_lab = lab(rgb, False), lab(src_rgb, False)
    chroma = np.hypot(result_lab[..., 1], result_lab[..., 2])
    full, soft = chroma[(mask == 1) & layer].mean(), chroma[(mask > 0.2) & (mask < 0.6) & layer].mean()
    assert full > 2.0 and soft < 0.8 * full, (full, soft)
    # Random alternatives at the panel's variation 0 reached the backend: the alternative
    # equals the main result. The variation and seed boxes (and "New seed") are greyed out
    # while they would do nothing.
    assert run["random_only_boxes_enabled"] == {"class alternatives": [False] * 3, "random alternatives": [True] * 3}
    assert np.array_equal(pixels(gui, children[0], doc["doc"])[0], rgb)
    assert ", variation 0" in children[0]["name"] and "variation" not in children[-1]["name"], children
    assert "(seed " in children[0]["name"] and "seed" not in children[-1]["name"], children
    # What the artist sees: colour inside the selection over the original's lightness, gray outside.
    projection = np.frombuffer((gui["work"] / run["projection_file"]).read_bytes(), np.uint8)
    seen = lab(projection.reshape(height, width, 4)[..., [2, 1, 0]] / 255.0, False)
    seen_chroma = np.hypot(seen[..., 1], seen[..., 2])
    assert seen_chroma[(mask == 1) & layer].mean() > 2.0
    assert seen_chroma[(mask == 0) & layer].max() < 1.0
    assert np.abs(seen[..., 0] - src_lab[..., 0])[(mask == 1) & layer].mean() < 3.0


def test_cancel_stops_the_job_and_adds_nothing(gui):
    run = gui["scenarios"]["cancel"]
    assert run["message"] == "Cancelled." and not run["busy"], run
    assert run["after"] == run["before"]
    assert run["backend_state"] == "ready"  # the backend is still usable after a cancel
