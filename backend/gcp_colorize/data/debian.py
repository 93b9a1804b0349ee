"""Fetch a Debian package with the normal apt client and unpack it without installing."""

from __future__ import annotations

import subprocess
from pathlib import Path


class PackageFetchError(RuntimeError):
    """apt-get download or dpkg -x failed; the message says why."""


def _run(command: list[str], cwd: Path) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise PackageFetchError(
            f"{command[0]} not found: the data command needs Debian's apt-get and dpkg") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise PackageFetchError(f"`{' '.join(command)}` failed (exit {result.returncode}): {detail}")


def download_and_extract(package: str, workdir: Path) -> Path:
    """`apt-get download PACKAGE` into workdir, then `dpkg -x` it; returns the unpacked root."""
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        _run(["apt-get", "download", "-q", package], workdir)
    except PackageFetchError as exc:
        raise PackageFetchError(
            f"{exc}\n(is the package in the configured apt sources? an `apt-get update` may be "
            f"needed first)") from None
    debs = sorted(workdir.glob(f"{package}_*.deb"))
    if len(debs) != 1:
        raise PackageFetchError(f"apt-get download {package} left {len(debs)} .deb files in {workdir}")
    root = workdir / "root"
    _run(["dpkg", "-x", str(debs[0]), str(root)], workdir)
    debs[0].unlink()  # the unpacked tree is all we need
    return root
