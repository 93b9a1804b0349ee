"""The Krita plugin as a zip for Krita's "Import Python Plugin from File", and the class
names file that install-plugin puts next to the plugin (no Krita needed)."""

import subprocess
import sys
import zipfile

import pytest

from gcp_colorize import plugin_install
from gcp_colorize.core.hostcore import BACKEND_COMMAND_FILE


def test_zip_has_folder_entries_the_krita_importer_needs(tmp_path):
    names = plugin_install.package_zip("krita", tmp_path / "plugin.zip")
    archived = zipfile.ZipFile(tmp_path / "plugin.zip").namelist()
    assert sorted(archived) == sorted(names)
    # Krita's importer finds the package by its folder entry holding an __init__.py.
    assert {"gcp_colorize/", "gcp_colorize/core/"} <= set(archived)
    assert {"gcp_colorize.desktop", "gcp_colorize/__init__.py", "gcp_colorize/core/client.py",
            "gcp_colorize/core/hostcore.py", "gcp_colorize/imagenet_classes.tsv"} <= set(archived)
    # No machine-specific backend command, no caches.
    assert not [n for n in archived if n.endswith(BACKEND_COMMAND_FILE) or "__pycache__" in n or n.endswith(".pyc")]
    desktop = zipfile.ZipFile(tmp_path / "plugin.zip").read("gcp_colorize.desktop").decode()
    assert "X-KDE-Library=gcp_colorize" in desktop and "ServiceTypes=Krita/PythonPlugin" in desktop


def test_zip_only_for_krita(tmp_path):
    with pytest.raises(plugin_install.InstallError, match="only Krita"):
        plugin_install.package_zip("gimp", tmp_path / "plugin.zip")


def test_zip_command_line(tmp_path):
    target = tmp_path / "gcp_colorize_krita.zip"
    done = subprocess.run([sys.executable, "-m", "gcp_colorize", "install-plugin", "krita", "--zip", str(target)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Import Python Plugin from File" in done.stdout and zipfile.is_zipfile(target)


def test_install_puts_the_class_names_next_to_the_plugin(tmp_path):
    plugin_install.install("krita", tmp_path / "pykrita")
    names = (tmp_path / "pykrita" / "gcp_colorize" / "imagenet_classes.tsv").read_text().splitlines()
    assert names[0].split("\t") == ["index", "wordnet_id", "names"] and len(names) == 1001
