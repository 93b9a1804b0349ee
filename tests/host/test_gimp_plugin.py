"""plug-in-gcp-colorize inside real GIMP 3.0.4 (Debian trixie root), called through the PDB
against a real backend process, checked on the layers and pixels GIMP ends up with.

Photos are made at test time from scikit-image's camera picture. The backend is
`gcp-colorize serve --weights random:tiny` (untrained: the tests check plumbing, lightness,
alpha and selection, not the quality of the colours), except for the cancel test, which
needs a job slow enough to kill the plug-in during it (tests/backend_double.py).
"""

import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import color, data

from gimp_host import GimpSession, gimp_root, warmed_gimp_dir
from service_harness import running_backend

pytestmark = pytest.mark.host

# Mean CIELAB chroma a gray photo has after colorization must exceed this (a gray pixel
# has 0); the untrained tiny model gives about 20.
MIN_MEAN_CHROMA = 5.0
# class alternatives (the default): the name gives the class, no seed (it made none of them)
RESULT_NAME = re.compile(r"^(Colorized|Alternative \d+) \((?!.*seed).+\)$")


@pytest.fixture(scope="module")
def root():
    return gimp_root()


@pytest.fixture(scope="module")
def warmed(root, tmp_path_factory):
    return warmed_gimp_dir(root, tmp_path_factory.mktemp("gimp-warmed"))


def write_photos(folder: Path) -> dict[str, str]:
    """Gray test photos, generated (never committed): name -> PNG path."""
    folder.mkdir(parents=True, exist_ok=True)
    camera = data.camera()  # 512 x 512 uint8
    small = np.asarray(Image.fromarray(camera).resize((256, 192), Image.Resampling.LANCZOS))
    alpha = np.tile(np.linspace(255, 64, small.shape[1]).round().astype(np.uint8), (small.shape[0], 1))
    alpha[:40, :40] = 0  # a fully transparent corner
    photos = {"grayphoto": Image.fromarray(camera),
              "alphaphoto": Image.fromarray(np.dstack([small, small, small, alpha]), "RGBA"),
              "smallphoto": Image.fromarray(small[:96, :128])}
    paths = {}
    for name, image in photos.items():
        paths[name] = str(folder / f"{name}.png")
        image.save(paths[name])
    return paths


@pytest.fixture(scope="module")
def session(root, warmed, tiny_backend, tmp_path_factory):
    return GimpSession(root, tmp_path_factory.mktemp("gimp"), Path(tiny_backend.env["XDG_RUNTIME_DIR"]), warmed)


@pytest.fixture(scope="module")
def photos(session):
    return write_photos(session.workdir / "photos")


def rgb_alpha(run, name, size):
    pixels = run.pixels(name, 4, size)
    return pixels[..., :3], pixels[..., 3]


def lightness(rgb):
    return color.rgb2lab(np.clip(rgb, 0.0, 1.0))[..., 0]


def chroma(rgb):
    lab = color.rgb2lab(np.clip(rgb, 0.0, 1.0))
    return np.hypot(lab[..., 1], lab[..., 2])


def only(report):
    assert len(report) == 1
    return report[0]


def assert_success(record, run):
    assert record["status"] == "success", f"{record.get('message')}\nGIMP's output:\n{run.output[-4000:]}"


def test_gray_photo_gets_a_group_of_colorized_layers_above_the_untouched_source(session, photos):
    case = {"name": "gray", "photo": photos["grayphoto"], "pad": [40, 24, 8, 8],
            "arguments": {"alternatives": 2, "seed": 7}}
    run = session.run([case], name="gray")
    record = only(run.report)
    assert_success(record, run)

    group, source = record["tree"]
    assert source["id"] == record["source"]["id"] and source["offsets"] == [40, 24]
    assert group["group"] and group["id"] == record["returned_group"]
    assert group["name"] == "GCP Colorize: photo" and group["mode"] == "pass-through"
    layers = group["children"]
    assert [layer["name"].split(" (")[0] for layer in layers] == ["Colorized", "Alternative 1", "Alternative 2"]
    assert all(RESULT_NAME.match(layer["name"]) for layer in layers), [layer["name"] for layer in layers]
    assert [layer["visible"] for layer in layers] == [True, False, False]
    for layer in layers:
        assert layer["offsets"] == [40, 24] and layer["size"] == [512, 512] and layer["mode"] == "normal"
    assert record["base_type"] == "rgb"  # the gray image was converted to hold colour

    size = (512, 512)
    source_rgb, _ = rgb_alpha(run, record["source"]["pixels"], size)
    after_rgb, _ = rgb_alpha(run, record["source_pixels_after"], size)
    # Untouched by conversion and colorization, compared at the photo's 8-bit precision: GIMP
    # reads the same 8-bit value of the gray and the converted RGB layer through different
    # float paths, which once differed by one float ulp (6e-8) on 3% of the pixels.
    np.testing.assert_array_equal(np.rint(after_rgb * 255), np.rint(source_rgb * 255))
    source_l = lightness(source_rgb)
    results = [rgb_alpha(run, name, size) for name in record["results"]]
    for rgb, alpha in results:
        np.testing.assert_array_equal(alpha, 1.0)
        delta = np.abs(lightness(rgb) - source_l)
        assert delta.mean() < 0.3 and delta.max() < 1.5, (delta.mean(), delta.max())  # 8-bit rounding
    assert chroma(results[0][0]).mean() > MIN_MEAN_CHROMA
    assert np.abs(results[0][0] - results[1][0]).mean() > 1e-3, "the alternative equals the main result"


def test_soft_selection_and_alpha_at_16_bit_linear_with_lch_colour_layers(session, photos):
    case = {"name": "sel16", "photo": photos["alphaphoto"], "precision": "U16_LINEAR",
            "selection": [40, 30, 160, 120, 24], "arguments": {"alternatives": 1, "seed": 3, "variation": 0.0,
                                                                "class-alternatives": False,
                                                                "output-mode": "lch-color"}}
    run = session.run([case], name="sel16")
    record = only(run.report)
    assert_success(record, run)
    assert record["precision"] == "GIMP_PRECISION_U16_LINEAR"
    assert record["source_digest_after"] == record["source"]["digest"]  # bit-identical

    width, height = record["image_size"]
    selection = run.pixels(record["selection"], 1, (width, height))[..., 0]
    ys, xs = np.nonzero(selection > 0)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    soft = (selection > 0.02) & (selection < 0.98)
    assert soft.sum() > 1000 and selection.max() > 0.99  # feathered edges around a fully selected centre
    layers = record["tree"][0]["children"]
    assert len(layers) == 2
    assert "variation" not in layers[0]["name"] and ", variation 0" in layers[1]["name"], layers  # main first
    assert "seed" not in layers[0]["name"] and "(seed 3, variation 0" in layers[1]["name"], layers
    for layer in layers:  # only the selection's bounds were sent and come back
        assert layer["offsets"] == [x0, y0] and layer["size"] == [x1 - x0, y1 - y0]
        assert layer["mode"] == "lch-color"

    source_rgb, source_alpha = rgb_alpha(run, record["source"]["pixels"], (width, height))
    source_rgb, source_alpha = source_rgb[y0:y1, x0:x1], source_alpha[y0:y1, x0:x1]
    weight = selection[y0:y1, x0:x1]
    for name in record["results"]:
        rgb, alpha = rgb_alpha(run, name, (x1 - x0, y1 - y0))
        # Outside the selection transparent, soft edges partly, the source's alpha kept.
        np.testing.assert_allclose(alpha, source_alpha * weight, atol=2e-3)
        visible = alpha > 0.01
        delta = np.abs(lightness(rgb) - lightness(source_rgb))[visible]
        assert delta.max() < 0.5, delta.max()
        assert chroma(rgb)[visible & (weight > 0.9)].mean() > MIN_MEAN_CHROMA
    # Variation 0 reached the backend: the alternative did not move from the main result.
    main, alternative = (rgb_alpha(run, name, (x1 - x0, y1 - y0))[0] for name in record["results"])
    np.testing.assert_array_equal(main, alternative)


PRECISIONS = {  # precision -> largest CIELAB L difference its storage rounding allows
    "U8_LINEAR": 2.5,  # 8-bit linear light is coarse in the shadows
    "U8_PERCEPTUAL": 0.5, "U16_NON_LINEAR": 0.01, "U32_LINEAR": 0.01,
    "HALF_LINEAR": 0.1, "FLOAT_NON_LINEAR": 0.01, "DOUBLE_LINEAR": 0.01,
}


def test_every_precision_keeps_lightness_and_gains_chroma(session, photos):
    plan = [{"name": precision.lower(), "photo": photos["smallphoto"], "mode": "rgb",
             "precision": precision, "arguments": {"alternatives": 0}} for precision in PRECISIONS]
    run = session.run(plan, name="precisions")
    for record, (precision, tolerance) in zip(run.report, PRECISIONS.items()):
        assert_success(record, run)
        assert record["precision"] == f"GIMP_PRECISION_{precision}"
        assert record["source_digest_after"] == record["source"]["digest"], precision
        source_rgb, _ = rgb_alpha(run, record["source"]["pixels"], (128, 96))
        (result,) = record["results"]
        rgb, alpha = rgb_alpha(run, result, (128, 96))
        np.testing.assert_allclose(alpha, 1.0, atol=1e-6)
        delta = np.abs(lightness(rgb) - lightness(source_rgb))
        assert delta.max() < tolerance, (precision, delta.max())
        assert chroma(rgb).mean() > MIN_MEAN_CHROMA, precision


def test_what_cannot_be_colorized_gets_a_message_and_leaves_the_image_alone(session, photos):
    photo = photos["smallphoto"]
    plan = [{"name": "class", "photo": photo, "arguments": {"class-choice": "no such class zzz"}},
            {"name": "walk", "photo": photo, "arguments": {"walk-direction": "sideways", "walk-amount": 1.0}},
            {"name": "group", "photo": photo, "target": "group"},
            {"name": "indexed", "photo": photo, "mode": "indexed"},
            {"name": "outside", "photo": photo, "pad": [0, 0, 200, 0], "selection": [300, 10, 20, 20, 0]}]
    expected = {"class": "class", "walk": "direction", "group": "layer group", "indexed": "Indexed",
                "outside": "selection does not overlap"}
    run = session.run(plan, name="errors")
    for record in run.report:
        assert record["status"] == "execution-error", record
        assert record["message"].startswith("GCP Colorize: ")
        assert expected[record["name"]] in record["message"], record["message"]
        names = [item["name"] for item in record["tree"]]
        assert names == (["a group", "photo"] if record["name"] == "group" else ["photo"])
        assert record["source_digest_after"] == record["source"]["digest"]


@pytest.mark.parametrize("backend_command", ["installed", "exits"])
def test_without_a_backend_the_plugin_fails_cleanly(root, warmed, tmp_path, backend_command):
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    gimp = GimpSession(root, tmp_path / "gimp", runtime, warmed)
    photos = write_photos(tmp_path / "gimp" / "photos")
    if backend_command == "exits":  # a backend that dies while starting, e.g. missing weights
        (gimp.plugin_dir / "backend-command.json").write_text(
            '{"command": ["python3", "-c", "import sys; sys.exit(\\"weights file missing\\")"]}')
    # "installed": the command install-plugin recorded points into this machine's virtualenv,
    # which does not exist inside the GIMP root, so the start fails there.
    started = time.monotonic()
    record = only(gimp.run([{"name": "down", "photo": photos["smallphoto"]}], name="down").report)
    assert time.monotonic() - started < 60
    assert record["status"] == "execution-error"
    message = record["message"]
    if backend_command == "installed":
        assert "cannot start the backend" in message, message
    else:
        assert "exited with code 1 while starting" in message and "weights file missing" in message, message
    assert [item["name"] for item in record["tree"]] == ["photo"]


def test_undo_removes_the_whole_insertion_in_one_step(session, photos):
    case = {"name": "undo", "photo": photos["grayphoto"], "selection": [100, 100, 300, 200, 10],
            "arguments": {"alternatives": 1}}
    run = session.run([case], gui=True, name="undo")
    record = only(run.report)
    assert_success(record, run)
    assert [item["name"] for item in record["tree"]] == ["GCP Colorize: photo", "photo"]
    assert record["base_type"] == "rgb"
    # One Ctrl+Z: group, layers and the gray-to-RGB conversion all go.
    assert [item["name"] for item in record["tree_after_undo"]] == ["photo"]
    assert record["base_type_after_undo"] == "gray"
    assert record["source_digest_after_undo"] == record["source"]["digest"]


def plugin_processes(plugin_dir: Path) -> list[int]:
    """Pids of running plug-in processes started from ``plugin_dir`` (GIMP runs the plug-in
    in the root's mount namespace but in this machine's pid namespace)."""
    script = str(plugin_dir / "gcp-colorize.py").encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if script in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_cancelling_kills_the_plugin_and_the_backend_job_stops(root, warmed, tmp_path):
    """GIMP's answer to a cancelled progress is to kill the plug-in (SIGKILL); the job it
    was waiting for must stop at once, not after the backend's client timeout."""
    with running_backend(tmp_path, "--stage-seconds", "10", "--client-timeout", "60") as backend:
        gimp = GimpSession(root, tmp_path / "gimp", Path(backend.env["XDG_RUNTIME_DIR"]), warmed)
        photos = write_photos(tmp_path / "gimp" / "photos")
        started = gimp.start([{"name": "cancel", "photo": photos["smallphoto"]}], name="cancel")
        with backend.client() as client:
            deadline = time.monotonic() + 60
            while client.status()["running"] is None and time.monotonic() < deadline:
                time.sleep(0.1)
            job_id = client.status()["running"]
            assert job_id is not None, "the plug-in's job never started"
            (pid,) = plugin_processes(gimp.plugin_dir)
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while client.status()["running"] is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert client.status()["running"] is None, "the job went on after the plug-in was killed"
        record = only(started.finish().report)
        assert record["status"] != "success"
        assert [item["name"] for item in record["tree"]] == ["photo"]
        assert f"job {job_id} cancel requested" in backend.log()
