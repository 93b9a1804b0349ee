"""`data prepare`: build the cached training set from the listed Debian package photos.

Per package with unfinished photos: download and unpack it in a temporary folder inside the
cache, extract the listed photos (from Qt resource archives where listed so), decode them,
crop cut-outs to their opaque bounding box (alpha kept), downscale, store as PNG, and
record them in the manifest, which is saved after every package so that an interrupted run
resumes where it stopped. Then every photo without pseudo-labels gets the classifier's
top-5 ImageNet classes on its centre view.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from . import views
from .debian import download_and_extract
from .licences import licence_note
from .manifest import PhotoRecord, load_manifest, save_manifest
from .photo_list import REPO_ROOT, RCC_PREFIX, PhotoSource, read_photo_list
from .qt_resources import QtResourceArchive

SETTINGS = {
    "max_short_side": 384,   # training crops are 128 px; this leaves room for scale jitter
    "max_long_side": 1024,   # panoramas (4:1) stay usable without keeping huge files
    "val_fraction": 0.08,
    "label_view_size": 224,  # the classifier's input size
    "labels_top_k": 5,
}
# Tiles of one stellarium panorama are adjacent slices of one photo: split them together.
SPLIT_BY_FOLDER = {"stellarium-data"}


class PrepareError(RuntimeError):
    """The training set cannot be prepared; the message says why."""


def split_of(photo: PhotoSource, val_fraction: float) -> str:
    """'val' or 'train', fixed by a hash of the photo's name (or folder, see SPLIT_BY_FOLDER)."""
    key = photo.path.rsplit("/", 1)[0] if photo.package in SPLIT_BY_FOLDER else photo.name
    digest = hashlib.sha256(key.encode()).digest()
    return "val" if int.from_bytes(digest[:4], "big") < val_fraction * 2**32 else "train"


def decode(data: bytes, what: str) -> Image.Image:
    """Photo bytes -> RGB or RGBA image (alpha only where some pixel is not opaque)."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # Pillow raises many types for bad data
        raise PrepareError(f"{what}: cannot decode the image: {exc}") from exc
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    image = image.convert("RGBA" if has_alpha else "RGB")
    if has_alpha and image.getchannel("A").getextrema()[0] == 255:
        image = image.convert("RGB")
    return image


def crop_to_opaque(image: Image.Image) -> Image.Image:
    """Cut-outs: the bounding box of the pixels with any opacity."""
    box = image.getchannel("A").getbbox()
    if box is None:
        raise PrepareError("the photo is fully transparent")
    return image.crop(box)


def downscale(image: Image.Image) -> Image.Image:
    """Shrink so the short side is <= max_short_side and the long side <= max_long_side.
    (Pillow resizes RGBA with premultiplied alpha, so transparent colours do not bleed.)"""
    short, long = sorted(image.size)
    scale = min(1.0, SETTINGS["max_short_side"] / short, SETTINGS["max_long_side"] / long)
    if scale == 1.0:
        return image
    size = tuple(max(1, round(side * scale)) for side in image.size)
    return image.resize(size, Image.Resampling.LANCZOS)


def save_png(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    image.save(temporary, format="PNG", optimize=False)
    temporary.replace(path)


class PackageContents:
    """Bytes of the listed photos in one unpacked package (plain files or inside .rcc)."""

    def __init__(self, root: Path):
        self.root = root
        self._archive_of: dict[str, QtResourceArchive] | None = None

    def _archives(self) -> dict[str, QtResourceArchive]:
        if self._archive_of is None:
            self._archive_of = {}
            for path in sorted(self.root.rglob("*.rcc")):
                archive = QtResourceArchive(path)
                for name in archive.files:
                    self._archive_of.setdefault(name, archive)
        return self._archive_of

    def read(self, photo: PhotoSource) -> bytes:
        if photo.in_resource_archive:
            inner = photo.path.removeprefix(RCC_PREFIX)
            archive = self._archives().get(inner)
            if archive is None:
                raise PrepareError(f"{photo.name}: {inner} is in none of the package's .rcc archives")
            return archive.read(inner)
        file = self.root / photo.path.lstrip("/")
        if not file.is_file():
            raise PrepareError(f"{photo.name}: {photo.path} is not in the package")
        return file.read_bytes()


def store_photo(photo: PhotoSource, contents: PackageContents, cache: Path,
                known_hashes: dict[str, str], log: Callable[[str], None]) -> PhotoRecord:
    image = decode(contents.read(photo), photo.name)
    if image.size != (photo.width, photo.height):
        log(f"  note: {photo.name} is {image.size[0]}x{image.size[1]}, "
            f"listed as {photo.width}x{photo.height}")
    digest = hashlib.sha256(image.mode.encode() + repr(image.size).encode() + image.tobytes()).hexdigest()
    record = PhotoRecord(name=photo.name, package=photo.package, path=photo.path,
                         licence="", source_size=list(image.size),
                         sha256=digest, split=split_of(photo, SETTINGS["val_fraction"]))
    if digest in known_hashes:
        record.duplicate_of = known_hashes[digest]
        log(f"  skipped {photo.name}: same pixels as {record.duplicate_of}")
        return record
    if image.mode == "RGBA":
        image = crop_to_opaque(image)
        record.has_alpha = True
        record.opaque_fraction = round(float(np.asarray(image.getchannel("A")).mean()) / 255, 4)
    image = downscale(image)
    record.file = f"photos/{photo.name}.png"
    record.size = list(image.size)
    save_png(image, cache / record.file)
    return record


def check_cache_location(cache: Path) -> Path:
    cache = cache.expanduser().resolve()
    if cache == REPO_ROOT or REPO_ROOT in cache.parents:
        raise PrepareError(f"the cache {cache} is inside the repository {REPO_ROOT}; "
                           f"downloaded photos must stay out of it")
    return cache


def add_pseudo_labels(cache: Path, records: list[PhotoRecord], log: Callable[[str], None],
                      device: str | None = None, batch_size: int = 16) -> None:
    """Top-k ImageNet classes of each photo's centre view (cut-outs composited on white)."""
    import torch

    from ..model.classifier import ImageNetClassifier

    classifier = ImageNetClassifier(device=device)
    size, k = SETTINGS["label_view_size"], SETTINGS["labels_top_k"]
    log(f"pseudo-labelling {len(records)} photos with EfficientNet-Lite0 on {classifier.device}")
    for start in range(0, len(records), batch_size):
        batch = records[start:start + batch_size]
        views_ = [views.centre_square(views.split_alpha(
            views.to_tensor(views.load_pixels(cache / r.file)))[0], size) for r in batch]
        predictions = classifier.predict(torch.stack(views_), k=k)
        for record, top in zip(batch, predictions):
            record.labels = [[p.index, p.name, round(p.probability, 4)] for p in top]


def prepare(cache: Path, photo_list: Path, log: Callable[[str], None] = print,
            device: str | None = None) -> dict[str, PhotoRecord]:
    """Build or complete the cache; returns the records. Raises PrepareError on failure
    after saving whatever was finished."""
    cache = check_cache_location(Path(cache))
    photos = read_photo_list(photo_list)
    cache.mkdir(parents=True, exist_ok=True)
    settings, records = load_manifest(cache)
    if settings and settings != SETTINGS:
        raise PrepareError(f"{cache} was prepared with other settings ({settings}); "
                           f"delete it or choose another --cache")
    stale = [r.name for r in records.values() if r.usable and not (cache / r.file).is_file()]
    for name in stale:  # a stored file was removed: redo that photo
        del records[name]
    todo: dict[str, list[PhotoSource]] = defaultdict(list)
    for photo in photos:
        if photo.name not in records:
            todo[photo.package].append(photo)
    log(f"cache {cache}: {len(photos)} listed photos, {len(photos) - sum(map(len, todo.values()))} "
        f"already prepared")
    failures = []
    for package, group in todo.items():
        log(f"{package}: apt-get download + dpkg -x, then extracting {len(group)} photos")
        with tempfile.TemporaryDirectory(prefix="unpack-", dir=cache) as workdir:
            root = download_and_extract(package, Path(workdir))
            copyright_file = root / "usr/share/doc" / package / "copyright"
            if copyright_file.is_file():
                (cache / "licences").mkdir(exist_ok=True)
                shutil.copyfile(copyright_file, cache / "licences" / f"{package}.copyright")
            contents = PackageContents(root)
            known = {r.sha256: r.name for r in records.values() if r.usable}
            for photo in group:
                try:
                    record = store_photo(photo, contents, cache, known, log)
                except PrepareError as exc:
                    failures.append(str(exc))
                    log(f"  FAILED {exc}")
                    continue
                records[photo.name] = record
                if record.usable:
                    known[record.sha256] = record.name
        save_manifest(cache, SETTINGS, records)
        log(f"{package}: done")
    for record in records.values():  # from the stored copyright files, so fixes apply on re-runs
        record.licence = licence_note(cache / "licences" / f"{record.package}.copyright",
                                      record.path.removeprefix(RCC_PREFIX))
    unlabelled = [r for r in records.values() if r.usable and not r.labels]
    if unlabelled:
        add_pseudo_labels(cache, unlabelled, log, device)
    save_manifest(cache, SETTINGS, records)
    if failures:
        raise PrepareError(f"{len(failures)} photos could not be prepared:\n" + "\n".join(failures))
    return records


def summary(cache: Path, records: dict[str, PhotoRecord]) -> str:
    """Counts per package and split, duplicates, cut-outs and cache size, as text lines."""
    counts = Counter((r.package, r.split) for r in records.values() if r.usable)
    lines = [f"{'package':32s} {'train':>6s} {'val':>5s} {'cut-out':>8s} {'duplicate':>10s}"]
    for package in sorted({r.package for r in records.values()}):
        cutouts = sum(r.has_alpha for r in records.values() if r.package == package and r.usable)
        duplicates = sum(bool(r.duplicate_of) for r in records.values() if r.package == package)
        lines.append(f"{package:32s} {counts[package, 'train']:6d} {counts[package, 'val']:5d} "
                     f"{cutouts:8d} {duplicates:10d}")
    total_train = sum(v for (_, s), v in counts.items() if s == "train")
    total_val = sum(v for (_, s), v in counts.items() if s == "val")
    size = sum(f.stat().st_size for f in Path(cache).rglob("*") if f.is_file())
    lines.append(f"{'total':32s} {total_train:6d} {total_val:5d}")
    lines.append(f"cache size: {size / 2**20:.1f} MiB in {cache}")
    return "\n".join(lines)
