"""The evaluation report: Markdown table, JSON with every number, and a PNG grid
(rows: photos; columns: gray input, each method's result, alternatives, ground truth)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .evaluate import GRAY_INPUT, Photo

CELL = 192
LABEL_HEIGHT = 18

COLUMNS = (  # key, heading, format
    ("psnr", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"), ("ciede2000", "ΔE00", "{:.2f}"),
    ("colourfulness", "colourful.", "{:.1f}"), ("colourfulness_ratio", "colourf./GT", "{:.0%}"),
    ("luminance_drift", "L drift", "{:.3f}"), ("top1_agreement", "top-1 agr.", "{:.0%}"),
    ("top5_agreement", "top-5 agr.", "{:.0%}"))


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _fmt(fmt: str, value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def _alternatives_source(settings: dict) -> str:
    if settings.get("class_alternatives"):
        return "from likely classes that colour differently"
    return f"at variation {settings.get('variation', 1.0):g}"


def markdown(results: dict, grid_name: str) -> str:
    s = results["settings"]
    gt = results["ground_truth"]
    lines = [
        "# Colorization evaluation", "",
        f"{len(results['photos'])} photos, converted to neutral gray with identical CIELAB L and "
        f"colorized. FID/KID on Inception-v3 pool3 features: over whole images (resized to 299) "
        f"and over {s['crops_per_image']} fixed random {s['crop_size']}-px crops per photo "
        f"(seed {s['seed']}). KID is shown x 1000. Classifier agreement: EfficientNet-Lite0 "
        f"top-1 of the output equals (top-1) or is among the top-5 of (top-5) the ground truth's "
        f"top-1. Ground-truth mean colourfulness: {gt['mean_colourfulness']:.1f}.", "",
        "| method | " + " | ".join(h for _, h, _ in COLUMNS) + " | FID | KID | FID crops | KID crops |",
        "|" + " --- |" * (len(COLUMNS) + 5)]
    for name, scores in results["methods"].items():
        cells = [_fmt(f, scores["mean"][k]) for k, _, f in COLUMNS]
        cells += [_fmt("{:.1f}", scores["fid"]), _fmt("{:.2f}", scores["kid"] * 1000),
                  _fmt("{:.1f}", scores["fid_crops"]), _fmt("{:.2f}", scores["kid_crops"] * 1000)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    alternatives = results.get("alternatives", {})
    if alternatives.get("count"):
        lines += ["", f"## Alternatives of `{results['main']}`", "",
                  f"Mean pairwise CIEDE2000 among an image's outputs (main result and "
                  f"{alternatives['count']} alternatives {_alternatives_source(s)}): "
                  f"{alternatives['mean_diversity']:.2f}.", "",
                  "| alternative | FID crops | FID crops / main's | KID crops |", "| --- | --- | --- | --- |"]
        for k, scores in enumerate(alternatives["per_alternative"], 1):
            lines.append(f"| {k} | {_fmt('{:.1f}', scores['fid_crops'])} | "
                         f"{_fmt('{:.2f}', scores['fid_crops_ratio'])} | "
                         f"{_fmt('{:.2f}', scores['kid_crops'] * 1000)} |")
    lines += ["", "## Per photo", ""]
    for name, scores in results["methods"].items():
        lines += [f"### {name}", "",
                  "| photo | " + " | ".join(h for _, h, _ in COLUMNS) + " | class (GT class) |",
                  "|" + " --- |" * (len(COLUMNS) + 2)]
        for photo, row in scores["per_image"].items():
            cells = [_fmt(f, row[k]) for k, _, f in COLUMNS]
            lines.append(f"| {photo} | " + " | ".join(cells) + f" | {row['class']} ({gt['class'][photo]}) |")
        lines.append("")
    if alternatives.get("count"):
        lines += ["### diversity of alternatives (mean pairwise CIEDE2000)", "",
                  "| photo | ΔE00 |", "| --- | --- |"]
        lines += [f"| {p} | {v:.2f} |" for p, v in alternatives["diversity"].items()]
        lines.append("")
    lines += ["## Picture", "", f"![inputs, results, alternatives and ground truth]({grid_name})", ""]
    return "\n".join(lines)


def _thumbnail(rgb: np.ndarray) -> Image.Image:
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
    image.thumbnail((CELL, CELL), Image.Resampling.LANCZOS)
    return image


def grid(photos: list[Photo], outputs: dict, main: str | None) -> Image.Image:
    """One row per photo: gray input, each non-gray method's result, the main method's
    alternatives, ground truth."""
    columns = [(GRAY_INPUT, lambda p: p.gray)]
    for name in outputs:
        if name != GRAY_INPUT:
            columns.append((name, lambda p, n=name: outputs[n][p.name][0]))
    if main is not None:
        count = min(len(v) for v in outputs[main].values()) - 1
        columns += [(f"alternative {k}", lambda p, k=k: outputs[main][p.name][k]) for k in range(1, count + 1)]
    columns.append(("ground truth", lambda p: p.rgb))
    sheet = Image.new("RGB", (CELL * len(columns), LABEL_HEIGHT + CELL * len(photos)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, (heading, _) in enumerate(columns):
        draw.text((c * CELL + 4, 3), heading[:30], fill="black")
    for r, photo in enumerate(photos):
        for c, (_, pick) in enumerate(columns):
            thumb = _thumbnail(pick(photo))
            sheet.paste(thumb, (c * CELL + (CELL - thumb.width) // 2,
                                LABEL_HEIGHT + r * CELL + (CELL - thumb.height) // 2))
    return sheet


def write_report(folder: Path, results: dict, outputs: dict, photos: list[Photo]) -> list[Path]:
    """report.md, report.json and grid.png in `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "report.md", folder / "report.json", folder / "grid.png"]
    grid(photos, outputs, results.get("main")).save(paths[2])
    paths[1].write_text(json.dumps(_json_safe(results), indent=1, ensure_ascii=False), encoding="utf-8")
    paths[0].write_text(markdown(results, paths[2].name), encoding="utf-8")
    return paths
