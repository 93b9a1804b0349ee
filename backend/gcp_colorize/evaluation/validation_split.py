"""The held-out split of the prepared training set as evaluation photos.

Only its opaque photos: the cut-outs with alpha have no background to compare. They are
linked into a folder under their prepared files' names, because `load_photos` reads a
folder in name order and the fixed FID/KID crops are drawn in that order: the same names
give the same crops, hence the same figures, in every session.
"""

from __future__ import annotations

from pathlib import Path

from ..data.manifest import DEFAULT_CACHE, prepared_photos


def link_validation_split(folder: Path, cache: Path = DEFAULT_CACHE) -> list[Path]:
    """Link the opaque photos of the cache's "val" split into `folder`; returns the links."""
    chosen = [r for r in prepared_photos(cache, "val") if not r.has_alpha]
    names = [Path(r.file).name for r in chosen]
    if len(set(names)) < len(names):  # photos of two packages: the figures need one name each
        raise ValueError(f"validation photos of {cache} share a file name; name order is ambiguous")
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for name, record in zip(names, chosen):
        link = folder / name
        link.symlink_to(Path(cache).resolve() / record.file)
        links.append(link)
    return links
