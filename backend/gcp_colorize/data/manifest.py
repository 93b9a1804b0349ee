"""The cached training set's manifest: one JSON file listing every prepared photo.

Layout of the cache directory:
    manifest.json                  {"version", "settings", "photos": [PhotoRecord, ...]}
    photos/<package>/<name>.png    RGB, or RGBA for cut-out photos (alpha kept, see prepare.py)
    licences/<package>.copyright   the package's debian/copyright
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gcp-colorize" / "data"


@dataclass
class PhotoRecord:
    name: str                 # PhotoSource.name, unique
    package: str
    path: str                 # path inside the package ("rcc:..." inside a resource archive)
    licence: str
    source_size: list[int]    # [width, height] as decoded
    sha256: str               # of the decoded source pixels, to spot duplicates
    split: str                # "train" or "val"
    file: str = ""            # relative to the cache; empty for a duplicate
    size: list[int] = field(default_factory=list)  # [width, height] as stored
    has_alpha: bool = False
    opaque_fraction: float = 1.0   # mean alpha of the stored (alpha-cropped) photo
    duplicate_of: str = ""
    labels: list[list] = field(default_factory=list)  # top-5 [index, name, probability]

    @property
    def usable(self) -> bool:
        return not self.duplicate_of and bool(self.file)


def load_manifest(cache: Path) -> tuple[dict, dict[str, PhotoRecord]]:
    """(settings, records by name); empty when there is no manifest yet."""
    path = Path(cache) / MANIFEST_NAME
    if not path.is_file():
        return {}, {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != MANIFEST_VERSION:
        raise ValueError(f"{path}: manifest version {data.get('version')} is not "
                         f"{MANIFEST_VERSION}; delete the cache and prepare again")
    records = {r["name"]: PhotoRecord(**r) for r in data["photos"]}
    return data.get("settings", {}), records


def prepared_photos(cache: Path, split: str) -> list[PhotoRecord]:
    """The usable, labelled photos of one split ("train" or "val"), in name order; an error
    that says what to run when there are none."""
    _, records = load_manifest(cache)
    chosen = [r for _, r in sorted(records.items()) if r.usable and r.split == split and r.labels]
    if not chosen:
        raise FileNotFoundError(f"no prepared {split} photos in {cache}: "
                                f"run `gcp-colorize data prepare --cache {cache}`")
    return chosen


def save_manifest(cache: Path, settings: dict, records: dict[str, PhotoRecord]) -> None:
    """Atomic write, so an interrupted run never leaves a half-written manifest."""
    path = Path(cache) / MANIFEST_NAME
    data = {"version": MANIFEST_VERSION, "settings": settings,
            "photos": [asdict(records[name]) for name in sorted(records)]}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
    temporary.replace(path)
