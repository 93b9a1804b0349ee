"""The connection file: private location, owner-only permissions, stale detection, lock."""

import os
import tempfile

import pytest

from gcp_colorize.core import connection
from gcp_colorize.core.protocol import PROTOCOL_VERSION

INFO = connection.ConnectionInfo("tcp://127.0.0.1:5555", bytes(range(32)), os.getpid(), PROTOCOL_VERSION,
                                 "0.1.0", 1.5)


def test_runtime_dir_under_xdg_runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = connection.default_path()
    assert path == tmp_path / "gcp-colorize" / "backend.json"
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_fallback_without_xdg_runtime_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    directory = connection.runtime_dir()
    assert directory == tmp_path / f"gcp-colorize-{os.getuid()}"
    assert directory.stat().st_mode & 0o777 == 0o700


def test_loose_permissions_are_tightened(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "gcp-colorize").mkdir(mode=0o755)
    os.chmod(tmp_path / "gcp-colorize", 0o755)
    assert connection.runtime_dir().stat().st_mode & 0o777 == 0o700


def test_a_planted_symlink_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / f"gcp-colorize-{os.getuid()}").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(connection.ConnectionFileError, match="not a directory"):
        connection.runtime_dir()


def test_write_read_owner_only(tmp_path):
    path = tmp_path / "backend.json"
    connection.write(INFO, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert connection.read(path) == INFO
    assert [p.name for p in tmp_path.iterdir()] == ["backend.json"]  # no temp file left


@pytest.mark.parametrize("text", ["", "{", '{"endpoint": "x"}', '{"endpoint": "x", "key": "zz", "pid": 1, '
                                  '"protocol": 1, "backend_version": "", "started": 0}'])
def test_malformed_files(tmp_path, text):
    path = tmp_path / "backend.json"
    path.write_text(text)
    with pytest.raises(connection.ConnectionFileError, match="malformed"):
        connection.read(path)


def test_remove_only_our_own_file(tmp_path):
    path = tmp_path / "backend.json"
    connection.write(INFO, path)
    connection.remove(path, os.getpid() + 1)
    assert path.exists()
    connection.remove(path, os.getpid())
    assert not path.exists()


def test_pid_alive():
    assert connection.pid_alive(os.getpid())
    assert not connection.pid_alive(2**22 + 12345)  # above Linux's pid_max


def test_lock_is_exclusive_and_released(tmp_path):
    first, second = connection.BackendLock(tmp_path / "backend.json"), connection.BackendLock(tmp_path / "backend.json")
    assert first.acquire()
    assert not second.acquire()
    assert second.holder_pid() == os.getpid()
    first.release()
    assert second.acquire()
    second.release()
