"""`gcp-colorize install-plugin`: files where the hosts look, core/ copied, backend
command recorded, Krita enabled in kritarc, reinstall idempotent."""

import json
import os
import subprocess
import sys

import pytest

from gcp_colorize import plugin_install
from gcp_colorize.core.hostcore import BACKEND_COMMAND_FILE, backend_command


@pytest.fixture
def home(tmp_path, monkeypatch):
    env = {"XDG_DATA_HOME": tmp_path / "data", "XDG_CONFIG_HOME": tmp_path / "config"}
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("GIMP3_DIRECTORY", raising=False)
    return tmp_path


def test_krita(home):
    plugin_install.install("krita")
    pykrita = home / "data" / "krita" / "pykrita"
    assert (pykrita / "gcp_colorize.desktop").is_file()
    assert (pykrita / "gcp_colorize" / "__init__.py").is_file()
    assert (pykrita / "gcp_colorize" / "core" / "client.py").is_file()
    assert not list(pykrita.rglob("__pycache__"))
    assert backend_command(pykrita / "gcp_colorize") == [sys.executable, "-m", "gcp_colorize", "serve"]
    assert "[python]\nenable_gcp_colorize=true" in (home / "config" / "kritarc").read_text()


def test_krita_reinstall_keeps_other_settings_and_replaces_stale_files(home):
    kritarc = home / "config" / "kritarc"
    kritarc.parent.mkdir(parents=True)
    kritarc.write_text("[General]\nfoo=1\n\n[python]\nenable_other=true\nenable_gcp_colorize=false\n\n[Zed]\nx=%1\n")
    plugin_install.install("krita")
    stale = home / "data" / "krita" / "pykrita" / "gcp_colorize" / "old_module.py"
    stale.write_text("")
    plugin_install.install("krita")
    assert not stale.exists()
    assert kritarc.read_text() == ("[General]\nfoo=1\n\n[python]\nenable_other=true\nenable_gcp_colorize=true\n"
                                   "\n[Zed]\nx=%1\n")


def test_gimp(home):
    plugin_install.install("gimp")
    folder = home / "config" / "GIMP" / "3.0" / "plug-ins" / "gcp-colorize"
    script = folder / "gcp-colorize.py"
    assert script.is_file() and os.access(script, os.X_OK)
    assert (folder / "core" / "protocol.py").is_file() and (folder / "core" / "__init__.py").is_file()
    assert json.loads((folder / BACKEND_COMMAND_FILE).read_text())["command"][0] == sys.executable


def test_dest_and_gimp3_directory(home, monkeypatch):
    plugin_install.install("gimp", home / "elsewhere")
    assert (home / "elsewhere" / "gcp-colorize" / "gcp-colorize.py").is_file()
    monkeypatch.setenv("GIMP3_DIRECTORY", str(home / "profile"))
    plugin_install.install("gimp")
    assert (home / "profile" / "plug-ins" / "gcp-colorize" / "gcp-colorize.py").is_file()


def test_missing_sources_are_a_clear_error(home):
    with pytest.raises(plugin_install.InstallError, match="source checkout"):
        plugin_install.install("krita", repo_root=home / "not-a-checkout")


def test_command_line(home):
    env = {**os.environ, "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}
    done = subprocess.run([sys.executable, "-m", "gcp_colorize", "install-plugin", "krita"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "enable_gcp_colorize=true" in done.stdout and "restart Krita" in done.stdout
    wrong = subprocess.run([sys.executable, "-m", "gcp_colorize", "install-plugin", "photoshop"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and "krita" in wrong.stderr
