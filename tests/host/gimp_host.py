"""Run real GIMP 3.0.4 for the host tests: inside the Debian trixie root that
scripts/build-gimp-root.sh builds, through scripts/in-gimp-root.sh, with a throwaway
GIMP3_DIRECTORY and home, the plug-in installed by `gcp-colorize install-plugin gimp`, and
the backend's runtime dir bound in so that the plug-in finds its connection file.

Batch runs use gimp-console; GUI runs (undo, which libgimp cannot trigger) use gimp-3.0
under xvfb-run. Either way the script tests/host/gimp_inside_colorize.py does the work in
GIMP and writes a report; anything wrong inside GIMP fails the test with GIMP's output.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IN_ROOT = REPO / "scripts" / "in-gimp-root.sh"
INSIDE_SCRIPT = Path(__file__).resolve().parent / "gimp_inside_colorize.py"
ROOT_STAMP = ".gcp-colorize-root"  # written by build-gimp-root.sh when the root is complete
GIMP_TIMEOUT_S = 300


def gimp_root() -> Path:
    """The finished trixie root; fails (GCP_REQUIRE_HOSTS=1) or skips the test without it."""
    root = Path(os.environ.get("GCP_GIMP_ROOT", Path.home() / ".cache/gcp-colorize/gimp-trixie-root"))
    problem = None
    if not (root / ROOT_STAMP).is_file():
        problem = f"no GIMP 3 root at {root}; build it with scripts/build-gimp-root.sh"
    elif os.geteuid() != 0 and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode != 0:
        problem = "entering the GIMP root needs root or password-less sudo"
    if problem:
        if os.environ.get("GCP_REQUIRE_HOSTS") == "1":
            pytest.fail(f"GIMP host required (GCP_REQUIRE_HOSTS=1) but unavailable: {problem}")
        pytest.skip(problem)
    return root


def install_plugin(gimp_dir: Path) -> Path:
    """`gcp-colorize install-plugin gimp` into GIMP_DIR/plug-ins; returns the plug-in folder."""
    plugins = gimp_dir / "plug-ins"
    done = subprocess.run([sys.executable, "-m", "gcp_colorize", "install-plugin", "gimp", "--dest", str(plugins)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"install-plugin failed:\n{done.stdout}\n{done.stderr}"
    folder = plugins / "gcp-colorize"
    assert os.access(folder / "gcp-colorize.py", os.X_OK), f"no executable plug-in in {folder}"
    return folder


@dataclass
class GimpRun:
    returncode: int
    output: str
    report: list[dict]
    out: Path

    def pixels(self, name: str, channels: int = 4, size: tuple[int, int] | None = None):
        """A dumped float image as an (H, W, channels) array; size = (width, height)."""
        import numpy as np

        data = np.fromfile(self.out / name, dtype="<f4")
        width, height = size
        return data.reshape(height, width, channels)


def gimp_environment(root: Path, workdir: Path, runtime_dir: Path, gimp_dir: Path) -> dict:
    """Environment of a GIMP run: everything GIMP and GTK write stays under ``workdir``
    (never in the cached root), the plug-in finds the backend through ``runtime_dir``."""
    home = workdir / "home"
    return {"PATH": os.environ["PATH"], "GCP_GIMP_ROOT": str(root), "LANG": "C.UTF-8", "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache"),
            "XDG_DATA_HOME": str(home / "data"), "XDG_RUNTIME_DIR": str(runtime_dir),
            "GIMP3_DIRECTORY": str(gimp_dir)}


def warmed_gimp_dir(root: Path, workdir: Path) -> Path:
    """A GIMP3_DIRECTORY after a first start: copies of it spare each session GIMP's query
    of its ~100 own plug-ins (about 15 s of a busy CI machine)."""
    gimp_dir = workdir / "gimp3"
    gimp_dir.mkdir(parents=True)
    # The welcome dialog would cover the image window in GUI runs.
    (gimp_dir / "gimprc").write_text("(show-welcome-dialog no)\n")
    done = subprocess.run([str(IN_ROOT), "--bind", str(workdir), "--", "gimp-console-3.0", "-i", "--no-fonts",
                           "--quit"], env=gimp_environment(root, workdir, workdir, gimp_dir),
                          capture_output=True, text=True, timeout=GIMP_TIMEOUT_S)
    assert done.returncode == 0, f"GIMP's first start failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return gimp_dir


class GimpSession:
    """A throwaway GIMP 3 set-up under ``workdir``: GIMP3_DIRECTORY copied from a warmed
    one, with the plug-in installed by `gcp-colorize install-plugin gimp`."""

    def __init__(self, root: Path, workdir: Path, runtime_dir: Path, warmed: Path):
        self.root, self.workdir, self.runtime_dir = root, workdir, runtime_dir
        self.gimp_dir = workdir / "gimp3"
        shutil.copytree(warmed, self.gimp_dir)
        self.plugin_dir = install_plugin(self.gimp_dir)

    def start(self, plan: list[dict], *, gui: bool = False, name: str = "run") -> "StartedGimp":
        """Start GIMP on ``plan`` (cases for gimp_inside_colorize.py); see ``StartedGimp.finish``."""
        out = self.workdir / name
        out.mkdir()
        (out / "plan.json").write_text(json.dumps(plan))
        env = {**gimp_environment(self.root, self.workdir, self.runtime_dir, self.gimp_dir),
               "GCP_GIMP_PLAN": str(out / "plan.json"), "GCP_GIMP_OUT": str(out)}
        gimp = ["gimp-console-3.0", "-i"]
        if gui:
            env["GCP_GIMP_UNDO_KEY"] = "1"
            gimp = ["xvfb-run", "-a", "-s", "-screen 0 1280x900x24", "gimp-3.0", "--no-splash"]
        command = [str(IN_ROOT), "--bind", str(self.workdir), "--bind", str(self.runtime_dir), "--",
                   *gimp, "--no-fonts", "--quit", "--batch-interpreter=python-fu-eval", "-b", "-"]
        with open(INSIDE_SCRIPT, "rb") as script:
            process = subprocess.Popen(command, stdin=script, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       env=env, start_new_session=True)
        return StartedGimp(process, out)

    def run(self, plan: list[dict], *, gui: bool = False, name: str = "run") -> GimpRun:
        return self.start(plan, gui=gui, name=name).finish()


@dataclass
class StartedGimp:
    process: subprocess.Popen
    out: Path

    def finish(self, timeout: float = GIMP_TIMEOUT_S) -> GimpRun:
        """Wait for GIMP; fails the test with GIMP's output when it or the script failed."""
        try:
            output, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            output, _ = self.process.communicate()
            pytest.fail(f"GIMP did not finish within {timeout} s:\n{output.decode(errors='replace')[-6000:]}")
        text = output.decode(errors="replace")
        report_path = self.out / "report.json"
        if self.process.returncode != 0 or not report_path.is_file():
            pytest.fail(f"GIMP exited with {self.process.returncode} (64: the script inside raised) and "
                        f"{'a' if report_path.is_file() else 'no'} report:\n{text[-6000:]}")
        return GimpRun(self.process.returncode, text, json.loads(report_path.read_text()), self.out)
