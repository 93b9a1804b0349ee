"""The list of training photos (shared/reference/training-photos.tsv) and where to find it.

Each row names a Debian package, a path inside it and the photo's size. A path starting
with `rcc:` lies inside one of the package's Qt resource archives (`*.rcc`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_PHOTO_LIST = REPO_ROOT.parent / "shared" / "reference" / "training-photos.tsv"
COLUMNS = ["package", "path_inside_package", "width", "height"]
RCC_PREFIX = "rcc:"


@dataclass(frozen=True)
class PhotoSource:
    package: str
    path: str       # absolute path in the package, or "rcc:" + path inside an archive
    width: int
    height: int

    @property
    def in_resource_archive(self) -> bool:
        return self.path.startswith(RCC_PREFIX)

    @property
    def name(self) -> str:
        """Stable, file-system-safe identifier: package/flattened-path."""
        inner = self.path.removeprefix(RCC_PREFIX).strip("/")
        for noise in ("usr/share/", "gcompris/src/activities/"):
            inner = inner.removeprefix(noise)
        return f"{self.package}/{re.sub(r'[^A-Za-z0-9._-]+', '_', inner)}"


def read_photo_list(path: Path = DEFAULT_PHOTO_LIST) -> list[PhotoSource]:
    """Parse the TSV; a malformed file raises ValueError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"photo list not found: {path} (expected ../shared/reference/training-photos.tsv "
            f"beside the repository; pass --list FILE)")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or rows[0] != COLUMNS:
        raise ValueError(f"{path}: the header must be {' / '.join(COLUMNS)}")
    photos, seen = [], set()
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 4 or not row[0] or not row[1]:
            raise ValueError(f"{path}:{line}: expected 4 tab-separated columns, got {row!r}")
        try:
            photo = PhotoSource(row[0], row[1], int(row[2]), int(row[3]))
        except ValueError:
            raise ValueError(f"{path}:{line}: width and height must be integers") from None
        if photo.name in seen:
            raise ValueError(f"{path}:{line}: duplicate photo {photo.name}")
        seen.add(photo.name)
        photos.append(photo)
    if not photos:
        raise ValueError(f"{path}: lists no photos")
    return photos
