"""Run an evaluation: photos -> neutral gray with the same L -> each method's colorizations
-> per-image metrics, set-level FID/KID (whole images and fixed crops), classifier
agreement, and the diversity of the main method's alternatives.

A method is any callable (gray (H, W, 3), alternatives) -> list of (H, W, 3) outputs, main
result first; the `eval` command builds them from `Colorizer`s, tests from plain functions.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from . import metrics
from .crops import crop_boxes, cut
from .inception import fid, kid

Method = Callable[[np.ndarray, int], list[np.ndarray]]
GRAY_INPUT = "gray input"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
MIN_COLOURFULNESS = 2.0  # a photo below this is already (nearly) gray: nothing to evaluate
PER_IMAGE_METRICS = ("psnr", "ssim", "ciede2000", "colourfulness", "colourfulness_ratio",
                     "colourfulness_difference", "luminance_drift", "top1_agreement",
                     "top5_agreement")


@dataclass
class Photo:
    name: str
    rgb: np.ndarray   # (H, W, 3) float32 ground truth
    gray: np.ndarray  # (H, W, 3) float32 neutral gray, same CIELAB L


@dataclass
class Settings:
    alternatives: int = 3
    crop_size: int = 299
    crops_per_image: int = 16
    seed: int = 0
    max_side: int = 1024
    variation: float = 1.0  # scale of the alternatives' latent noise (recorded; the Method applies it)
    class_alternatives: bool = True  # alternatives from other likely classes, else noise (recorded, likewise)


def load_photos(folder: Path, max_side: int, log: Callable[[str], None] = print) -> list[Photo]:
    """The colour photos of a folder (sorted by name), shrunk to at most max_side."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    photos = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                if max(image.size) > max_side:
                    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                rgb = np.asarray(image, dtype=np.float32) / 255
        except OSError as exc:
            log(f"skipped {path.name}: cannot read it ({exc})")
            continue
        if min(rgb.shape[:2]) < metrics.SSIM_WINDOW:
            log(f"skipped {path.name}: smaller than {metrics.SSIM_WINDOW} pixels")
            continue
        if metrics.colourfulness(rgb) < MIN_COLOURFULNESS:
            log(f"skipped {path.name}: already gray")
            continue
        photos.append(Photo(path.stem, rgb, metrics.neutral_gray(rgb)))
    if not photos:
        raise ValueError(f"no colour photos ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return photos


def gray_input(gray: np.ndarray, alternatives: int) -> list[np.ndarray]:
    """The baseline that adds no colour."""
    return [gray]


def image_metrics(output: np.ndarray, photo: Photo, gt_colourfulness: float) -> dict:
    c = metrics.colourfulness(output)
    return {"psnr": metrics.psnr(output, photo.rgb), "ssim": metrics.ssim(output, photo.rgb),
            "ciede2000": metrics.mean_ciede2000(output, photo.rgb), "colourfulness": c,
            "colourfulness_ratio": c / gt_colourfulness, "colourfulness_difference": c - gt_colourfulness,
            "luminance_drift": metrics.luminance_drift(output, photo.rgb)}


def _whole(images: list[np.ndarray]) -> torch.Tensor:
    """Whole images -> (N, 3, 299, 299), each resized on its own."""
    return torch.cat([torch.nn.functional.interpolate(
        torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None], size=(299, 299),
        mode="bilinear", align_corners=False, antialias=True) for x in images])


class Evaluation:
    """Holds the networks and the ground-truth statistics of one photo set."""

    def __init__(self, photos: list[Photo], settings: Settings, inception, classifier,
                 log: Callable[[str], None] = print):
        self.photos, self.settings, self.log = photos, settings, log
        self.inception, self.classifier = inception, classifier
        self.boxes = {p.name: crop_boxes(p.name, *p.rgb.shape[:2], settings.crop_size,
                                         settings.crops_per_image, settings.seed) for p in photos}
        self.gt_colourfulness = {p.name: metrics.colourfulness(p.rgb) for p in photos}
        log(f"ground truth: Inception features of {len(photos)} photos and "
            f"{len(photos) * settings.crops_per_image} crops")
        truth = [p.rgb for p in photos]
        self.gt_whole, self.gt_crops = self._features(truth)
        self.gt_classes = self._top5(truth)[:, 0]

    def _features(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        size = self.settings.crop_size
        crops = torch.cat([cut(x, self.boxes[p.name], size) for x, p in zip(images, self.photos)])
        return self.inception(_whole(images)), self.inception(crops)

    def _top5(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, 5) class indices, most probable first."""
        return np.stack([self.classifier.probabilities(
            torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]).topk(5).indices[0].numpy()
            for x in images])

    def distribution(self, images: list[np.ndarray]) -> dict:
        whole, crops = self._features(images)
        return {"fid": fid(whole, self.gt_whole), "kid": kid(whole, self.gt_whole),
                "fid_crops": fid(crops, self.gt_crops), "kid_crops": kid(crops, self.gt_crops)}

    def score(self, outputs: list[np.ndarray]) -> dict:
        """Metrics of one output per photo: per image, means, and set-level FID/KID."""
        top5 = self._top5(outputs)
        per_image = {}
        for photo, output, classes, truth in zip(self.photos, outputs, top5, self.gt_classes):
            row = image_metrics(output, photo, self.gt_colourfulness[photo.name])
            row["top1_agreement"] = float(classes[0] == truth)
            row["top5_agreement"] = float(truth in classes)
            row["class"] = self.classifier.classes.name(int(classes[0]))
            per_image[photo.name] = row
        mean = {k: float(np.mean([row[k] for row in per_image.values()])) for k in PER_IMAGE_METRICS}
        return {"per_image": per_image, "mean": mean, **self.distribution(outputs)}

    def run(self, methods: dict[str, Method], main: str | None) -> tuple[dict, dict]:
        """Returns (results as JSON-able dict, outputs[method][photo] = list of images)."""
        n = self.settings.alternatives
        outputs: dict[str, dict[str, list[np.ndarray]]] = {}
        results = {"settings": asdict(self.settings), "photos": [p.name for p in self.photos],
                   "ground_truth": {
                       "class": {p.name: self.classifier.classes.name(int(c))
                                 for p, c in zip(self.photos, self.gt_classes)},
                       "colourfulness": self.gt_colourfulness,
                       "mean_colourfulness": float(np.mean(list(self.gt_colourfulness.values())))},
                   "main": main, "methods": {}}
        for name, method in methods.items():
            wanted = n if name == main else 0
            self.log(f"{name}: colorizing {len(self.photos)} photos"
                     + (f" with {wanted} alternatives each" if wanted else ""))
            outputs[name] = {}
            for photo in self.photos:
                produced = method(photo.gray, wanted)
                if not produced or any(x.shape != photo.rgb.shape for x in produced):
                    raise ValueError(f"{name} returned no image or a wrong size for {photo.name}")
                outputs[name][photo.name] = [np.asarray(x, dtype=np.float32) for x in produced]
            self.log(f"{name}: metrics")
            results["methods"][name] = self.score([outputs[name][p.name][0] for p in self.photos])
        if main is not None and n > 0:
            results["alternatives"] = self.alternatives(outputs[main], results["methods"][main])
        return results, outputs

    def alternatives(self, outputs: dict[str, list[np.ndarray]], main_scores: dict) -> dict:
        """Diversity: mean pairwise CIEDE2000 among an image's outputs (main result and
        alternatives); quality: each alternative's crop FID/KID, and FID relative to the main's."""
        count = min(len(v) for v in outputs.values()) - 1
        if count < 1:
            return {"count": 0}
        self.log(f"alternatives: diversity and FID of {count} alternatives")
        diversity = {}
        for photo in self.photos:
            labs = [metrics.lab(x) for x in outputs[photo.name][:count + 1]]
            diversity[photo.name] = float(np.mean(
                [metrics.ciede2000(a, b).mean() for a, b in itertools.combinations(labs, 2)]))
        per_alternative = []
        for k in range(1, count + 1):
            scores = self.distribution([outputs[p.name][k] for p in self.photos])
            main_fid = main_scores["fid_crops"]
            scores["fid_crops_ratio"] = scores["fid_crops"] / main_fid if main_fid > 0 else float("nan")
            per_alternative.append(scores)
        return {"count": count, "diversity": diversity,
                "mean_diversity": float(np.mean(list(diversity.values()))),
                "per_alternative": per_alternative}
