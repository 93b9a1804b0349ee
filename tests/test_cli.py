"""`gcp-colorize colorize`, `demo` and `serve --stop` as a user runs them (subprocesses)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gcp_colorize.weights import default_weights_dir
from service_harness import backend_env, gray_gradient, running_backend


def run_cli(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gcp_colorize", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def photos(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "in"
    (folder / "more").mkdir(parents=True)
    gray = folder / "gray.png"
    Image.fromarray(gray_gradient(37, 23)).save(gray)
    rgba = np.dstack([np.repeat(gray_gradient(30, 20)[..., None], 3, -1),
                      np.linspace(0, 255, 600).reshape(20, 30).astype(np.uint8)])
    Image.fromarray(rgba).save(folder / "more" / "cut-out.png")
    Image.fromarray(gray_gradient(16, 40)).save(folder / "more" / "tall.jpg")
    (folder / "more" / "notes.txt").write_text("not an image")
    return {"gray": gray, "folder": folder / "more"}


def test_colorize_files_and_folders_through_the_running_backend(tmp_path, photos):
    with running_backend(tmp_path) as backend:
        out = tmp_path / "out"
        done = run_cli(backend.env, "colorize", str(photos["gray"]), str(photos["folder"]), "-o", str(out),
                       "--alternatives", "2", "--seed", "5")
        assert done.returncode == 0, done.stderr
        assert "using the backend" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stem}{suffix}.png" for stem in ("gray", "cut-out", "tall") for suffix in ("", ".alt-1", ".alt-2"))
    for stem, size, mode in (("gray", (37, 23), "RGB"), ("cut-out", (30, 20), "RGBA"), ("tall", (16, 40), "RGB")):
        for suffix in ("", ".alt-1", ".alt-2"):
            with Image.open(out / f"{stem}{suffix}.png") as result:
                assert (result.size, result.mode) == (size, mode)
    with Image.open(out / "cut-out.png") as result, Image.open(photos["folder"] / "cut-out.png") as source:
        assert np.array_equal(np.asarray(result)[..., 3], np.asarray(source)[..., 3])  # alpha kept
    assert f"{photos['gray']} -> {out / 'gray.png'}" in done.stdout


def test_colorize_reports_bad_inputs(tmp_path, photos):
    env = backend_env(tmp_path)
    missing = run_cli(env, "colorize", str(tmp_path / "nope.png"), "-o", str(tmp_path / "out"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    twice = run_cli(env, "colorize", str(photos["gray"]), str(photos["gray"]), "-o", str(tmp_path / "out"))
    assert twice.returncode == 2 and "rename one" in twice.stderr
    walk = run_cli(env, "colorize", str(photos["gray"]), "-o", str(tmp_path / "out"), "--walk", "saturation")
    assert walk.returncode == 2 and "DIRECTION:AMOUNT" in walk.stderr
    variation = run_cli(env, "colorize", str(photos["gray"]), "-o", str(tmp_path / "out"), "--variation", "9")
    assert variation.returncode == 2 and "between 0 and 4" in variation.stderr
    assert not (tmp_path / "out").exists()


def test_colorize_skips_unreadable_files_and_rejected_requests(tmp_path, photos):
    broken = photos["folder"] / "broken.png"
    broken.write_bytes(b"\x89PNG but not really")
    with running_backend(tmp_path) as backend:
        out = tmp_path / "out"
        done = run_cli(backend.env, "colorize", str(photos["folder"]), "-o", str(out), "--alternatives", "0")
        assert done.returncode == 1 and "skipping" in done.stderr and "broken.png" in done.stderr
        assert sorted(p.name for p in out.iterdir()) == ["cut-out.png", "tall.png"]
        unknown = run_cli(backend.env, "colorize", str(photos["gray"]), "-o", str(out), "--class", "no such thing")
        assert unknown.returncode == 1 and "unknown_class" in unknown.stderr


def test_serve_stop(tmp_path):
    with running_backend(tmp_path) as backend:
        done = run_cli(backend.env, "serve", "--stop", "--connection-file", str(backend.connection_path))
        assert done.returncode == 0 and "stopped" in done.stdout
        assert backend.process.wait(10) == 0
    nothing = run_cli(backend.env, "serve", "--stop", "--connection-file", str(backend.connection_path))
    assert nothing.returncode == 1 and "no backend is running" in nothing.stderr


def test_demo_names_the_missing_weights_file(tmp_path):
    empty = tmp_path / "weights"
    empty.mkdir()
    done = run_cli(backend_env(tmp_path), "demo", "-o", str(tmp_path / "out"), "--weights", str(empty))
    assert done.returncode == 1
    assert str(empty / "config.json") in done.stderr
    assert not (tmp_path / "out").exists()  # nothing fake was written


@pytest.mark.slow
def test_demo_with_the_default_weights(tmp_path):
    done = run_cli(backend_env(tmp_path), "demo", "-o", str(tmp_path / "out"), timeout=1800)
    if not (default_weights_dir() / "config.json").is_file():
        assert done.returncode == 1 and str(default_weights_dir() / "config.json") in done.stderr
        return
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["camera.alt-1.png", "camera.alt-2.png", "camera.alt-3.png", "camera.input.png", "camera.png"]
    assert "colorized:" in done.stdout


@pytest.mark.slow
def test_colorize_in_process_with_random_weights_is_reproducible(tmp_path, photos):
    env = backend_env(tmp_path)
    outputs = []
    for attempt in ("a", "b"):
        out = tmp_path / attempt
        done = run_cli(env, "colorize", str(photos["gray"]), "-o", str(out), "--in-process", "--weights",
                       "random:tiny", "--alternatives", "1", "--seed", "9", timeout=900)
        assert done.returncode == 0, done.stderr
        assert "colorizing in this process" in done.stderr and "model" in done.stderr  # progress lines
        outputs.append([(out / name).read_bytes() for name in ("gray.png", "gray.alt-1.png")])
    assert outputs[0] == outputs[1]
    assert outputs[0][0] != outputs[0][1]  # the alternative differs from the main result


@pytest.mark.parametrize("argv, message", [
    (["train", "stage1", "--threads", "0"], "--threads: must be 1 or more, got 0"),
    (["train", "stage0", "--batch-size", "-4"], "--batch-size: must be 1 or more, got -4"),
    (["eval", "--dev-set", "--alternatives", "-1"], "--alternatives: must be 0 or more, got -1"),
    (["eval", "--dev-set", "--crops", "1"], "--crops: must be 2 or more, got 1"),
    (["eval", "--dev-set", "--crop-size", "31"], "--crop-size: must be 32 or more, got 31"),
    (["eval", "--dev-set", "--max-side", "0"], "--max-side: must be 32 or more, got 0"),
    (["eval", "--dev-set", "--crops", "two"], "--crops: invalid integer value: 'two'"),
    (["classes", "dog", "--limit", "-1"], "--limit: must be 0 or more, got -1"),
    (["serve", "--queue-size", "0"], "--queue-size: must be 1 or more, got 0"),
    (["colorize", "x.png", "-o", "out", "--variation", "4.5"], "--variation: must be between 0 and 4, got 4.5"),
])
def test_bad_numbers_are_refused_while_parsing(argv, message, capsys):
    from gcp_colorize.cli import build_parser
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(argv)
    assert refused.value.code == 2 and message in capsys.readouterr().err
