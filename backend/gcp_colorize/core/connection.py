"""The connection file: how clients find the running backend and its secret key.

One JSON file per backend (default ``$XDG_RUNTIME_DIR/gcp-colorize/backend.json``) holding
the endpoint, the protocol version, the per-start HMAC key and the backend's pid. Only the
owner can read it: whoever reads the key may submit jobs. The backend holds an advisory
lock next to it for its whole life, so a crashed backend's file is recognised as stale
(the lock is gone) even when its pid has been reused.

Standard library only: this module is copied into Krita's and GIMP's Python.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

APP_DIR_NAME = "gcp-colorize"
CONNECTION_FILE_NAME = "backend.json"
# `gcp-colorize serve` exits with this code when another live backend holds the lock.
EXIT_ALREADY_RUNNING = 3


class ConnectionFileError(Exception):
    """The connection file is missing, unreadable, malformed or in an unsafe place."""


@dataclass(frozen=True)
class ConnectionInfo:
    endpoint: str          # e.g. "tcp://127.0.0.1:53817" or "ipc:///run/user/1000/gcp-colorize/backend.sock"
    key: bytes             # HMAC-SHA256 key, random per backend start
    pid: int
    protocol: int
    backend_version: str
    started: float         # time.time() when the backend became ready

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "key": self.key.hex()}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "ConnectionInfo":
        data = json.loads(text)
        return cls(endpoint=str(data["endpoint"]), key=bytes.fromhex(data["key"]), pid=int(data["pid"]),
                   protocol=int(data["protocol"]), backend_version=str(data["backend_version"]),
                   started=float(data["started"]))


def _private_dir(path: Path) -> Path:
    """Create ``path`` owner-only, or check that an existing one is ours and private."""
    path.mkdir(mode=0o700, parents=False, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise ConnectionFileError(f"{path} exists and is not a directory")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ConnectionFileError(f"{path} belongs to another user; refusing to keep a secret key there")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR/gcp-colorize`` when the runtime dir is usable, else a private
    ``gcp-colorize-<uid>`` folder in the system temp dir (checked to be ours)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir() and os.access(xdg, os.W_OK | os.X_OK):
        return _private_dir(Path(xdg) / APP_DIR_NAME)
    owner = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return _private_dir(Path(tempfile.gettempdir()) / f"{APP_DIR_NAME}-{owner}")


def default_path() -> Path:
    return runtime_dir() / CONNECTION_FILE_NAME


def write(info: ConnectionInfo, path: Path) -> None:
    """Write atomically with owner-only permissions (never readable by others, even briefly)."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(info.to_json())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def read(path: Path) -> ConnectionInfo:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConnectionFileError(f"no backend connection file at {path}") from None
    except OSError as exc:
        raise ConnectionFileError(f"cannot read the connection file {path}: {exc}") from None
    try:
        return ConnectionInfo.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConnectionFileError(f"connection file {path} is malformed ({exc})") from None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    except OSError:
        return False
    return True


def remove(path: Path, pid: int) -> None:
    """Remove the file if it still names ``pid`` (never another backend's file)."""
    try:
        if read(path).pid == pid:
            Path(path).unlink(missing_ok=True)
    except ConnectionFileError:
        pass


class BackendLock:
    """Advisory lock held by a running backend for the life of its connection file.

    ``acquire`` fails while another live backend holds it; the lock vanishes with its
    process, so a leftover connection file without a lock holder is stale."""

    def __init__(self, connection_path: Path):
        self.path = Path(connection_path).with_suffix(".lock")
        self._fd: int | None = None

    def acquire(self) -> bool:
        import fcntl  # POSIX only; the backend runs on Linux/macOS

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {time.time()}\n".encode())
        self._fd = fd
        return True

    def holder_pid(self) -> int | None:
        """The pid written by the current holder, if readable."""
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
