"""`gcp-colorize install-plugin krita|gimp [--dest DIR]`: put a plugin where its host finds it.

What each host needs is data (``HOSTS``): which folders/files to copy where, which files
must be executable, where the backend command goes, and which host settings to turn on.
Every plugin gets a copy of ``core/`` (the client library) and ``backend-command.json``
naming this installation's Python, so the plugin can start the backend it came from.
A reinstall replaces the plugin's own files and leaves everything else alone.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parents[2]
CORE_DIR = Path(__file__).resolve().parent / "core"
CORE = "<core>"  # a Copy source standing for the package's core/ folder
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


class InstallError(Exception):
    pass


def xdg_data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def xdg_config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def gimp_profile_dir() -> Path:
    return Path(os.environ.get("GIMP3_DIRECTORY") or xdg_config_home() / "GIMP" / "3.0")


@dataclass(frozen=True)
class Copy:
    source: str  # relative to the repository root, or CORE
    target: str  # relative to the plugin folder


@dataclass(frozen=True)
class IniSetting:
    """``key=value`` in ``[section]`` of a host's INI-style config file."""

    file: Callable[[], Path]
    section: str
    key: str
    value: str


@dataclass(frozen=True)
class HostPlugin:
    default_dest: Callable[[], Path]  # the host's plugin folder
    copies: tuple[Copy, ...]
    plugin_dir: str                   # the plugin's own folder inside dest: gets backend-command.json
    executables: tuple[str, ...] = ()
    settings: tuple[IniSetting, ...] = ()


HOSTS = {
    # Krita: pykrita/NAME/ (package) + pykrita/NAME.desktop, enabled in kritarc [python].
    "krita": HostPlugin(
        default_dest=lambda: xdg_data_home() / "krita" / "pykrita",
        copies=(Copy("plugin_krita/gcp_colorize", "gcp_colorize"),
                Copy("plugin_krita/gcp_colorize.desktop", "gcp_colorize.desktop"),
                Copy(CORE, "gcp_colorize/core"),
                # ImageNet class names for the docker's searchable class list.
                Copy("backend/gcp_colorize/resources/imagenet_classes.tsv", "gcp_colorize/imagenet_classes.tsv")),
        plugin_dir="gcp_colorize",
        settings=(IniSetting(lambda: xdg_config_home() / "kritarc", "python", "enable_gcp_colorize", "true"),)),
    # GIMP 3: plug-ins/NAME/NAME.py, executable, folder named like the script.
    "gimp": HostPlugin(
        default_dest=lambda: gimp_profile_dir() / "plug-ins",
        copies=(Copy("plugin_gimp", "gcp-colorize"),
                Copy(CORE, "gcp-colorize/core")),
        plugin_dir="gcp-colorize",
        executables=("gcp-colorize/gcp-colorize.py",)),
}


def backend_command() -> list[str]:
    """How a plugin starts the backend of this installation."""
    return [sys.executable, "-m", "gcp_colorize", "serve"]


def set_ini_value(path: Path, section: str, key: str, value: str) -> None:
    """Set one key, keeping every other line of the file as it was (KConfig files are not
    safe to round-trip through configparser)."""
    lines = path.read_text().splitlines() if path.exists() else []
    header = f"[{section}]"
    start = next((i for i, line in enumerate(lines) if line.strip() == header), None)
    if start is None:
        lines += ([""] if lines and lines[-1].strip() else []) + [header, f"{key}={value}"]
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
        existing = next((i for i in range(start + 1, end) if lines[i].split("=", 1)[0].strip() == key), None)
        if existing is None:
            lines.insert(start + 1, f"{key}={value}")
        else:
            lines[existing] = f"{key}={value}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _sources(host: str, repo_root: Path) -> list[tuple[Path, Copy]]:
    """(source path, copy) for each of the host plugin's copies; InstallError if any is missing."""
    sources = [(CORE_DIR if c.source == CORE else repo_root / c.source, c) for c in HOSTS[host].copies]
    missing = [str(path) for path, _ in sources if not path.exists()]
    if missing:
        raise InstallError(f"the {host} plugin sources are missing ({', '.join(missing)}); install-plugin "
                           "works from a source checkout of gcp-colorize")
    return sources


def install(host: str, dest: Path | None = None, repo_root: Path = REPO_ROOT) -> list[str]:
    """Install the plugin for ``host``; returns what was done, one line per step."""
    plugin = HOSTS[host]
    dest = Path(dest) if dest else plugin.default_dest()
    sources = _sources(host, repo_root)
    done = []
    for source, copy in sources:
        target = dest / copy.target
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=IGNORED)
        else:
            shutil.copy2(source, target)
        done.append(f"copied {source} -> {target}")
    for name in plugin.executables:
        path = dest / name
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    from .core.hostcore import BACKEND_COMMAND_FILE

    command_file = dest / plugin.plugin_dir / BACKEND_COMMAND_FILE
    command_file.write_text(json.dumps({"command": backend_command()}, indent=1) + "\n")
    done.append(f"wrote {command_file} (starts the backend with {' '.join(backend_command())})")
    for setting in plugin.settings:
        path = setting.file()
        set_ini_value(path, setting.section, setting.key, setting.value)
        done.append(f"set [{setting.section}] {setting.key}={setting.value} in {path}")
    return done


def package_zip(host: str, zip_path: Path, repo_root: Path = REPO_ROOT) -> list[str]:
    """Write the plugin's files (without a backend command: the zip may go to another
    machine) as a zip for Krita's Tools > Scripts > Import Python Plugin from File, which
    needs explicit folder entries. Returns the archive's names."""
    import zipfile

    if host != "krita":
        raise InstallError(f"only Krita imports plugins from a zip; install the {host} plugin with install-plugin")
    files = {}  # archive name -> source file
    for source, copy in _sources(host, repo_root):
        if source.is_file():
            files[copy.target] = source
            continue
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files[f"{copy.target}/{path.relative_to(source).as_posix()}"] = path
    folders = sorted({"/".join(name.split("/")[:depth]) + "/"
                      for name in files for depth in range(1, name.count("/") + 1)})
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder in folders:
            archive.writestr(folder, "")
        for name, path in files.items():
            archive.write(path, name)
    return folders + list(files)


def register(subparsers) -> None:
    parser = subparsers.add_parser("install-plugin", help="install the Krita or GIMP plugin for this user")
    parser.add_argument("host", choices=sorted(HOSTS))
    parser.add_argument("--dest", type=Path, metavar="DIR",
                        help="plugin folder (default: Krita's pykrita/ or GIMP 3's plug-ins/ of this user)")
    parser.add_argument("--zip", type=Path, metavar="FILE",
                        help="instead of installing, write a zip for Krita's Import Python Plugin from File")
    parser.set_defaults(func=_install_command)


def _install_command(args) -> int:
    if args.zip:
        try:
            names = package_zip(args.host, args.zip)
        except (InstallError, OSError) as exc:
            print(f"gcp-colorize: cannot package the {args.host} plugin: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.zip} ({len(names)} entries); in Krita: Tools > Scripts > Import Python Plugin from "
              "File, restart Krita, then start the backend with `gcp-colorize serve`")
        return 0
    try:
        steps = install(args.host, args.dest)
    except (InstallError, OSError) as exc:
        print(f"gcp-colorize: cannot install the {args.host} plugin: {exc}", file=sys.stderr)
        return 1
    print("\n".join(steps))
    print(f"restart {args.host.capitalize()} to load the plugin")
    return 0
