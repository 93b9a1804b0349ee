"""Run real Krita 5.1.5 from tests: throwaway XDG folders, the plugin installed with
`gcp-colorize install-plugin krita`, scripts under `kritarunner`, the GUI under Xvfb.

Krita never reports failure through its exit code (kritarunner always exits 0), so every
in-Krita script writes a JSON result file that the caller reads; a missing file is a
failure with Krita's output attached."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

HOST_DIR = Path(__file__).resolve().parent
REPO = HOST_DIR.parent.parent
GUI_DRIVER = HOST_DIR / "krita_gui_driver"
GUI_DRIVER_NAME = "gcp_colorize_test_driver"
SYSTEM_PYTHON = "/usr/bin/python3"  # the Debian Python that Krita embeds (not a venv's or /usr/local's)
INSTALL_HINT = "install it with scripts/install-krita.sh (Debian 12: krita, python3-pyqt5, xvfb, xauth, " \
               "python3-zmq, python3-msgpack)"


def require_krita(gui: bool = False) -> None:
    """Skip when Krita (or Xvfb for the GUI) is missing; fail instead under GCP_REQUIRE_HOSTS=1."""
    tools = ["kritarunner", "krita"] + (["xvfb-run", "xauth"] if gui else [])
    missing = [tool for tool in tools if shutil.which(tool) is None]
    probe = "import PyQt5, zmq, msgpack"
    if not missing and subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode != 0:
        missing.append("python3-pyqt5/python3-zmq/python3-msgpack")
    if not missing:
        return
    message = f"Krita host test needs {', '.join(missing)}: {INSTALL_HINT}"
    if os.environ.get("GCP_REQUIRE_HOSTS") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass
class KritaHome:
    """Throwaway XDG folders for one Krita run; ``runtime`` is shared with the backend."""

    root: Path
    runtime: Path

    @property
    def data(self) -> Path:
        return self.root / "xdg-data"

    @property
    def config(self) -> Path:
        return self.root / "xdg-config"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def pykrita(self) -> Path:
        return self.data / "krita" / "pykrita"

    @property
    def plugin(self) -> Path:
        return self.pykrita / "gcp_colorize"

    def env(self, **extra: str) -> dict:
        # Krita's embedded Python must see the system's packages (PyQt5), not an activated
        # virtual environment: without this, tests run from an activated venv hang Krita.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("QT_", "PYTHON")) and k != "VIRTUAL_ENV"}
        venv = os.environ.get("VIRTUAL_ENV")
        if venv:
            env["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep)
                                          if not d.startswith(venv))
        # TMPDIR: Krita leaves its swap files and frame caches behind when a test kills it.
        env.update(XDG_DATA_HOME=str(self.data), XDG_CONFIG_HOME=str(self.config),
                   XDG_RUNTIME_DIR=str(self.runtime), HOME=str(self.root), TMPDIR=str(self.tmp),
                   **extra)
        return env


def make_home(root: Path, runtime: Path) -> KritaHome:
    home = KritaHome(root, runtime)
    for path in (home.data, home.config, home.tmp):
        path.mkdir(parents=True, exist_ok=True)
    return home


def install_plugin(home: KritaHome) -> str:
    """`gcp-colorize install-plugin krita` into the throwaway Krita folders; returns its output."""
    done = subprocess.run([sys.executable, "-m", "gcp_colorize", "install-plugin", "krita"], env=home.env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"install-plugin failed:\n{done.stdout}\n{done.stderr}"
    assert (home.pykrita / "gcp_colorize.desktop").is_file() and (home.plugin / "__init__.py").is_file()
    return done.stdout


def run_kritarunner(home: KritaHome, script_dir: Path, module: str, function: str, args: list[str],
                    result_path: Path, timeout: float = 300) -> dict:
    """Run ``module.function(args)`` under kritarunner (no X server) and return the JSON
    it wrote to ``result_path``."""
    env = home.env(QT_QPA_PLATFORM="offscreen", PYTHONPATH=os.pathsep.join([str(script_dir), str(home.pykrita)]))
    done = subprocess.run(["kritarunner", "-s", module, "-f", function, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    return _result(result_path, done)


def install_gui_driver(home: KritaHome, settings: dict) -> None:
    """Install the test-only plugin that drives Krita's GUI, with its settings, and
    enable it and the plugin under test in kritarc."""
    shutil.copytree(GUI_DRIVER / GUI_DRIVER_NAME, home.pykrita / GUI_DRIVER_NAME, dirs_exist_ok=True)
    shutil.copy(GUI_DRIVER / f"{GUI_DRIVER_NAME}.desktop", home.pykrita)
    (home.pykrita / GUI_DRIVER_NAME / "settings.json").write_text(json.dumps(settings))
    kritarc = home.config / "kritarc"
    text = kritarc.read_text() if kritarc.exists() else ""
    if f"enable_{GUI_DRIVER_NAME}=true" not in text:
        if "[python]" in text:
            text = text.replace("[python]\n", f"[python]\nenable_{GUI_DRIVER_NAME}=true\n", 1)
        else:
            text += f"\n[python]\nenable_{GUI_DRIVER_NAME}=true\n"
        kritarc.write_text(text)


def run_krita_gui(home: KritaHome, result_path: Path, timeout: float = 600, attempts: int = 2) -> dict:
    """Start the full Krita GUI under Xvfb; the driver plugin writes ``result_path`` and
    exits Krita. One start failure right after another Xvfb run is known: retry once."""
    command = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", "krita", "--nosplash"]
    for attempt in range(attempts):
        done = subprocess.run(command, env=home.env(), capture_output=True, text=True, timeout=timeout)
        if result_path.exists() or attempt == attempts - 1:
            break
    return _result(result_path, done)


def _result(path: Path, done: subprocess.CompletedProcess) -> dict:
    output = (f"exit code {done.returncode}\n--- stdout ---\n{done.stdout[-6000:]}\n"
              f"--- stderr ---\n{done.stderr[-6000:]}")
    if not path.exists():
        pytest.fail(f"Krita wrote no result file {path}:\n{output}", pytrace=False)
    result = json.loads(path.read_text())
    if result.get("error"):
        pytest.fail(f"the script inside Krita failed:\n{result['error']}\n{output}", pytrace=False)
    if result.get("exceptions"):  # raised in Python slots inside Krita (recorded by the GUI driver)
        pytest.fail("exceptions inside Krita:\n" + "\n".join(result["exceptions"]), pytrace=False)
    result["krita_output"] = output
    return result


# -- pixels ------------------------------------------------------------------------------------

def gray_photo(width: int, height: int) -> np.ndarray:
    """(H, W) uint8: skimage's camera photo, cropped and subsampled (made at test time)."""
    from skimage import data

    camera = data.camera()
    step = max(1, min(camera.shape[0] // height, camera.shape[1] // width))
    crop = camera[::step, ::step][:height, :width]
    if crop.shape != (height, width):
        crop = np.pad(crop, ((0, height - crop.shape[0]), (0, width - crop.shape[1])), mode="reflect")
    return np.ascontiguousarray(crop)


def decode_krita(raw: bytes, width: int, height: int, model: str, depth: str) -> tuple[np.ndarray, np.ndarray]:
    """Krita layer bytes -> (H, W, 3) float colour in R, G, B order and (H, W) float alpha,
    both scaled to [0, 1] (values are in the layer's own transfer curve)."""
    dtype = {"U8": "<u1", "U16": "<u2", "F16": "<f2", "F32": "<f4"}[depth]
    scale = {"U8": 255.0, "U16": 65535.0}.get(depth, 1.0)
    channels = 2 if model == "GRAYA" else 4
    array = np.frombuffer(raw, dtype=dtype).reshape(height, width, channels).astype(np.float64) / scale
    if model == "GRAYA":
        return np.repeat(array[..., :1], 3, axis=-1), array[..., 1]
    rgb = array[..., [2, 1, 0]] if depth in ("U8", "U16") else array[..., :3]
    return rgb, array[..., 3]


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)


def lab(rgb: np.ndarray, linear: bool) -> np.ndarray:
    """(..., 3) RGB with sRGB primaries (sRGB-encoded unless ``linear``) -> CIELAB (D65)."""
    lin = rgb if linear else srgb_to_linear(np.clip(rgb, 0, 1))
    m = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                  [0.019334, 0.119193, 0.950227]]) / np.array([0.950456, 1.0, 1.088754])[:, None]
    xyz = lin @ m.T
    d = 6 / 29
    f = np.where(xyz > d ** 3, np.cbrt(np.maximum(xyz, d ** 3)), xyz / (3 * d * d) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)
