"""Start real backend processes (subprocesses, real sockets) for the service, client and
CLI tests, each with its own private runtime dir under the test's tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from gcp_colorize.core import connection
from gcp_colorize.core.client import Client
from gcp_colorize.core.protocol import PixelImage

TESTS = Path(__file__).resolve().parent
DOUBLE_SCRIPT = TESTS / "backend_double.py"
START_TIMEOUT_S = 120


@dataclass
class Backend:
    process: subprocess.Popen
    connection_path: Path
    log_path: Path
    env: dict

    @property
    def info(self) -> connection.ConnectionInfo:
        return connection.read(self.connection_path)

    def client(self, timeout: float = 10.0) -> Client:
        return Client.connect(self.connection_path, timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def backend_env(tmp_path: Path) -> dict:
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "OMP_NUM_THREADS": "1"}


def double_command(connection_path: Path, *options: str) -> list[str]:
    return [sys.executable, str(DOUBLE_SCRIPT), "--connection-file", str(connection_path), *options]


def serve_command(connection_path: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "gcp_colorize", "serve", "--connection-file", str(connection_path),
            "--threads", "1", *options]


def launch(command: list[str], connection_path: Path, log_path: Path, env: dict) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)


def wait_ready(process: subprocess.Popen, connection_path: Path, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if connection.read(connection_path).pid == process.pid:
                return
        except connection.ConnectionFileError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"backend exited with {process.returncode}:\n{log_path.read_text()}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"backend not ready after {START_TIMEOUT_S} s:\n{log_path.read_text()}")


@contextmanager
def running_backend(tmp_path: Path, *options: str, model: str | None = None) -> Iterator[Backend]:
    """A backend subprocess: the test double (default) or, with ``model="random:tiny"``
    etc., the real `gcp-colorize serve --weights MODEL`."""
    env = backend_env(tmp_path)
    connection_path = Path(env["XDG_RUNTIME_DIR"]) / "gcp-colorize" / "backend.json"
    connection_path.parent.mkdir(mode=0o700, exist_ok=True)
    log_path = tmp_path / "backend.log"
    command = (serve_command(connection_path, "--weights", model, *options) if model
               else double_command(connection_path, *options))
    process = launch(command, connection_path, log_path, env)
    backend = Backend(process, connection_path, log_path, env)
    try:
        wait_ready(process, connection_path, log_path)
        yield backend
    finally:
        backend.stop()


def gray_gradient(width: int, height: int) -> np.ndarray:
    """(H, W) uint8 test picture with horizontal and vertical structure."""
    x = np.linspace(0, 1, width)[None, :]
    y = np.linspace(0, 1, height)[:, None]
    return np.rint(255 * (0.6 * x + 0.4 * y ** 2)).astype(np.uint8)


def rgba_image(width: int, height: int) -> tuple[PixelImage, np.ndarray]:
    """A gray picture as RGBA uint8 with a varying alpha; returns the image and its array."""
    gray = gray_gradient(width, height)
    array = np.stack([gray, gray, gray, np.arange(width * height, dtype=np.uint8).reshape(height, width)], -1)
    return PixelImage(array.tobytes(), width, height, "RGBA", "uint8"), array
