"""What the host benchmarks (bench_krita_plugin.py, bench_gimp_plugin.py) share: their
options, the gray photo they colorize and the client-only timing they compare with."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "host")]  # the host-test harness

from gcp_colorize.core.protocol import PixelImage  # noqa: E402

ALTERNATIVES = 3  # the plugins' default


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--weights", nargs="+", default=["random:tiny", "random:small"])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="the backend's torch threads")
    return parser.parse_args()


def gray_photo(size: int) -> np.ndarray:
    """scikit-image's camera man, SIZE x SIZE uint8."""
    return np.asarray(Image.fromarray(data.camera()).resize((size, size), Image.Resampling.LANCZOS))


def client_seconds(backend, gray: np.ndarray, layout: str, repeats: int) -> float:
    """Median time of `repeats` requests as the plugin sends the layer (`layout` "RGBA" or
    "BGRA", uint8), straight from a client, after one warm-up request (first-call allocations)."""
    height, width = gray.shape
    pixels = np.dstack([gray, gray, gray, np.full_like(gray, 255)]).tobytes()  # the same bytes in both layouts
    times = []
    with backend.client(timeout=60) as client:
        for _ in range(1 + repeats):
            started = time.monotonic()
            client.submit(PixelImage(pixels, width, height, layout, "uint8"), alternatives=ALTERNATIVES).wait()
            times.append(time.monotonic() - started)
    return statistics.median(times[1:])
