"""The Colorizer: ImageNet classifier + GCP model + full-resolution imaging, and
``colorize_pixels``, the protocol-pixels entry point used by the backend and the CLI.

One colorization (paper section 3, official inference):
  full-res sRGB -> L (kept exactly) -> aspect-kept square at the model's resolution ->
  class (classifier on the gray square, or the caller's choice) -> z = E(x_l, class)
  + latent shift -> ab from the GCP model -> cropped, guided-upsampled to full res ->
  Lab(original L, ab) -> sRGB, desaturated at constant L where out of gamut.
Diversity: alternative k adds ``variation`` times the k-th N(0, I) vector drawn from a
generator seeded with ``seed`` (so alternative k is the same whatever the number asked for),
or, with ``class_alternatives``, uses another of the most likely classes: the model runs on
the ``CLASS_CANDIDATES`` most likely ones and, down the ranking, takes each class whose
colouring differs by at least ``DISTINCT_ENOUGH`` (mean CIEDE2000) from every result already
taken (the next likely classes alone are often near synonyms that colour alike; the most
distinct ones are often unlikely colourings).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import imaging
from .core.protocol import ErrorCode, PixelImage, ResultImage
from .evaluation.metrics import ciede2000
from .model.lab import AB_SCALE, rgb_to_model_input

log = logging.getLogger(__name__)

CLASS_CANDIDATES = 8  # likely classes the class alternatives are picked from (more if more are asked)
# Mean CIEDE2000 a class alternative keeps from the main result and the other alternatives
# where the candidates allow: the quality target's spread of 8 plus a margin, as the guided
# upsampling and gamut mapping that follow shrink differences by about 5%.
DISTINCT_ENOUGH = 10.0


class Cancelled(Exception):
    """Raised inside colorize when ``should_stop()`` turned true."""


class UnknownChoice(ValueError):
    """A class or latent direction the model does not know; ``code`` is the ErrorCode."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Colorization:
    rgb: np.ndarray  # (H, W, 3) float32 sRGB in [0, 1], same H, W as the input; CIELAB L == input L
    label: str       # "colorized", "alternative 1", ...
    seed: int
    class_index: int
    class_name: str


class Colorizer:
    """The GCP colorizer of one weights set on one device (see module docstring)."""

    def __init__(self, weights: str = "default", device: str | None = None,
                 reduced_precision: bool = False):
        """reduced_precision: run the networks under bf16 (CPU) / fp16 (CUDA) autocast
        (model/precision.py: fast only on hardware with native support; chroma moves by
        about 1.4 ab units on average, see docs/BENCHMARKS.md)."""
        from .model.classifier import ImageNetClassifier
        from .weights import load

        self.weights = load(weights, device)
        self.model = self.weights.model
        self.config = self.weights.config
        self.device = next(self.model.parameters()).device
        self.classifier = ImageNetClassifier(self.device)
        self.reduced_precision = reduced_precision
        self.info = {"device": str(self.device), "weights": weights, "config": self.config.name,
                     "native_resolution": self.config.resolution,
                     "directions": list(self.weights.directions.names) if self.weights.directions else []}

    @torch.inference_mode()
    def colorize(self, rgb: np.ndarray, *, alternatives: int = 3, seed: int | None = None,
                 class_choice: int | str = "auto", class_alternatives: bool = True,
                 walk: tuple[str, float] | None = None, variation: float = 1.0,
                 progress: Callable[[str, float], None] = lambda stage, fraction: None,
                 should_stop: Callable[[], bool] = lambda: False) -> list[Colorization]:
        """rgb (H, W, 3) float32 sRGB in [0, 1] -> main result and ``alternatives``
        alternatives, each (H, W, 3) with the input's CIELAB L."""
        def check() -> None:
            if should_stop():
                raise Cancelled

        seed = secrets.randbelow(2**31) if seed is None else seed
        walk_shift = self._walk_shift(walk)
        check()
        progress("classify", 0.0)
        lightness = imaging.lightness(rgb, self.device)                    # (H, W), kept exactly
        square, placement = imaging.fit_square(
            imaging.to_tensor(rgb, self.device), self.config.resolution,
            imaging.border_margin(self.config.resolution))   # (1, 3, R, R)
        x_l = rgb_to_model_input(square)                                    # (1, 1, R, R)
        guide_low = imaging.crop_placed((x_l + 1) * 50, placement)          # L at model scale
        total = 1 + alternatives
        # The neutral-gray picture of L: colour in the input must not sway the class.
        logits, semantic = self.model.read_gray(self.classifier, x_l)
        if class_alternatives and alternatives:
            candidates = [(c, walk_shift) for c in
                          self._classes(logits[0], class_choice, max(CLASS_CANDIDATES, total) - 1)]
        else:
            class_index = self._classes(logits[0], class_choice, 0)[0]
            noise = torch.randn(alternatives, self.config.dim_z, generator=torch.Generator().manual_seed(seed))
            candidates = [(class_index, walk_shift + variation * noise[k - 1] if k else walk_shift)
                          for k in range(total)]
        check()

        chromas = []
        for k, (class_index, shift) in enumerate(candidates):
            progress("model", 0.1 + 0.5 * k / len(candidates))
            # Test configs (random:tiny) embed fewer than 1000 classes: wrap the index.
            model_class = torch.tensor([class_index % self.config.n_classes], device=self.device)
            with self._precision():
                ab_norm = self.model(x_l, model_class, shift.to(self.device),
                                     semantic).float()                      # (1, 2, R, R)
            chromas.append(imaging.crop_placed(ab_norm * AB_SCALE, placement))
            check()
        chosen = (likely_and_distinct(colour_differences(chromas, guide_low), total, DISTINCT_ENOUGH)
                  if len(candidates) > total else range(total))

        results = []
        for k, index in enumerate(chosen):
            progress("upsample", 0.6 + 0.4 * k / total)
            class_index = candidates[index][0]
            colorized = imaging.colorized_rgb(lightness, imaging.guide_coefficients(chromas[index], guide_low))
            results.append(Colorization(colorized, "colorized" if k == 0 else f"alternative {k}", seed,
                                        class_index, self.classifier.classes.name(class_index)))
            check()
        progress("upsample", 1.0)
        return results

    def _precision(self):
        if not self.reduced_precision:
            return contextlib.nullcontext()
        from .model.precision import reduced_precision
        return reduced_precision(self.device)

    def _classes(self, logits: torch.Tensor, choice: int | str, extra: int) -> list[int]:
        """The chosen (or most likely) ImageNet class, then ``extra`` next most likely ones,
        from the classifier's (1000,) logits of the gray picture."""
        ranking = logits.argsort(descending=True).tolist()
        if choice == "auto":
            chosen = ranking[0]
        else:
            try:
                chosen = self.classifier.classes.resolve(choice)
            except (KeyError, IndexError) as exc:
                raise UnknownChoice(ErrorCode.UNKNOWN_CLASS, str(exc).strip("'\"")) from None
        if not extra:
            return [chosen]
        return [chosen] + [c for c in ranking if c != chosen][:extra]

    def _walk_shift(self, walk: tuple[str, float] | None) -> torch.Tensor:
        """(dim_z,) latent shift for a walk (zeros without one)."""
        if walk is None:
            return torch.zeros(self.config.dim_z)
        directions = self.weights.directions
        if directions is None:
            raise UnknownChoice(ErrorCode.UNKNOWN_DIRECTION,
                                f"weights {self.info['weights']!r} have no latent directions; walks need weights "
                                "with directions (e.g. the official deformator)")
        name, amount = walk
        if name not in directions.names:
            raise UnknownChoice(ErrorCode.UNKNOWN_DIRECTION,
                                f"unknown direction {name!r}; known: {', '.join(directions.names)}")
        return directions.shift(name, amount).float().cpu()


def colour_differences(chromas: list[torch.Tensor], lightness: torch.Tensor) -> np.ndarray:
    """(n, n) mean CIEDE2000 between colourings: n (1, 2, h, w) a*b* maps over one (1, 1, h, w) L."""
    labs = [torch.cat([lightness, chroma], 1)[0].permute(1, 2, 0).cpu().numpy() for chroma in chromas]
    differences = np.zeros((len(labs), len(labs)))
    for i, j in itertools.combinations(range(len(labs)), 2):
        differences[i, j] = differences[j, i] = ciede2000(labs[i], labs[j]).mean()
    return differences


def likely_and_distinct(differences: np.ndarray, count: int, enough: float) -> list[int]:
    """Indices of ``count`` candidates given their (n, n) colour differences, candidates in
    likelihood order (0 is the main result). Down the ranking, each candidate at least
    ``enough`` from every one already chosen joins; if the ranking runs out first, the rest
    follow in farthest-point order (each time the one whose nearest chosen is farthest).
    Choices are made in order and never revisited, so a shorter list is a prefix of a longer one."""
    chosen = [0]
    for i in range(1, len(differences)):
        if len(chosen) < count and differences[i, chosen].min() >= enough:
            chosen.append(i)
    while len(chosen) < min(count, len(differences)):
        nearest = differences[:, chosen].min(axis=1)
        nearest[chosen] = -1.0
        chosen.append(int(nearest.argmax()))
    return chosen


def colorize_pixels(colorizer, image: PixelImage, mask: PixelImage | None = None, *,
                    progress: Callable[[str, float], None] = lambda stage, fraction: None,
                    should_stop: Callable[[], bool] = lambda: False,
                    **options) -> tuple[list[ResultImage], dict[str, float]]:
    """Colorize protocol pixels: decode, ``colorizer.colorize(rgb, **options)``, blend with
    the selection mask, encode back to the image's dtype and layout (alpha unchanged).
    Returns the results (main first) and seconds per step. ``progress`` gets the overall
    fraction of the job."""
    timing = {}
    started = time.monotonic()
    progress("decode", 0.0)
    decoded = imaging.decode(image)
    selection = imaging.decode_mask(mask) if mask is not None else None
    timing["decode"] = time.monotonic() - started

    started = time.monotonic()
    colorizations = colorizer.colorize(
        decoded.rgb, progress=lambda stage, fraction: progress(stage, 0.05 + 0.85 * fraction),
        should_stop=should_stop, **options)
    timing["colorize"] = time.monotonic() - started

    started = time.monotonic()
    results = []
    for done, colorization in enumerate(colorizations, 1):
        if should_stop():
            raise Cancelled
        rgb = colorization.rgb
        if selection is not None:
            rgb = imaging.blend_selection(decoded.rgb, rgb, selection, colorizer.info["device"])
        results.append(ResultImage(imaging.encode(rgb, decoded), colorization.label, colorization.seed,
                                   colorization.class_index, colorization.class_name))
        progress("encode", 0.9 + 0.1 * done / len(colorizations))
    timing["encode"] = time.monotonic() - started
    return results, timing
