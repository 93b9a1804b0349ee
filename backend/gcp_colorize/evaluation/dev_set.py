"""The development evaluation photos (DATA.md): colour photographs bundled with
scikit-image, scikit-learn and matplotlib, written as PNG files into a folder.

The photos DATA.md reserves for independent evaluation are never used here, nor
anywhere in training or tuning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _skimage(name: str):
    def load() -> np.ndarray:
        from skimage import data
        return getattr(data, name)()
    return load


def _motorcycle_left() -> np.ndarray:
    from skimage import data
    return data.stereo_motorcycle()[0]


def _sklearn(name: str):
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image
        return load_sample_image(f"{name}.jpg")
    return load


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        return np.asarray(image.convert("RGB"))


DEV_PHOTOS = {
    "astronaut": _skimage("astronaut"),
    "chelsea": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
    "rocket": _skimage("rocket"),
    "motorcycle_left": _motorcycle_left,
    "china": _sklearn("china"),
    "flower": _sklearn("flower"),
    "grace_hopper": _grace_hopper,
}


def gather_dev_set(folder: Path) -> list[Path]:
    """Write the development photos into `folder` (skipping existing files); returns paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, load in DEV_PHOTOS.items():
        path = folder / f"{name}.png"
        if not path.is_file():
            try:
                pixels = load()
            except ImportError as exc:
                raise RuntimeError(f"the development photo {name!r} needs {exc.name}: install the "
                                   f"project's 'eval' extra") from exc
            Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths
