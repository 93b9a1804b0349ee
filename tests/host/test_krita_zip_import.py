"""Krita's own "Import Python Plugin from File" code accepts the plugin zip and unpacks
the same plugin that install-plugin installs (less the machine-specific backend command)."""

import filecmp
import subprocess
from pathlib import Path

import pytest

from krita_harness import SYSTEM_PYTHON, require_krita

from gcp_colorize import plugin_install
from gcp_colorize.core.hostcore import BACKEND_COMMAND_FILE

pytestmark = pytest.mark.host

KRITA_IMPORTER = Path("/usr/share/krita/pykrita/plugin_importer/plugin_importer.py")


def test_krita_importer_accepts_the_zip(tmp_path):
    require_krita()
    assert KRITA_IMPORTER.is_file(), f"Krita's plugin importer is missing: {KRITA_IMPORTER}"
    plugin_install.package_zip("krita", tmp_path / "plugin.zip")
    resources = tmp_path / "resources"
    resources.mkdir()
    done = subprocess.run([SYSTEM_PYTHON, str(KRITA_IMPORTER), str(tmp_path / "plugin.zip"), str(resources)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Imported plugin: GCP Colorize" in done.stdout, done.stdout + done.stderr

    plugin_install.install("krita", tmp_path / "installed")
    (tmp_path / "installed" / "gcp_colorize" / BACKEND_COMMAND_FILE).unlink()
    comparison = filecmp.dircmp(resources / "pykrita", tmp_path / "installed")
    pending = [comparison]
    while pending:
        cmp = pending.pop()
        assert not (cmp.left_only or cmp.right_only or cmp.diff_files), (cmp.left, cmp.left_only, cmp.right_only,
                                                                         cmp.diff_files)
        pending.extend(cmp.subdirs.values())
