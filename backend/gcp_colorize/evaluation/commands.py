"""`gcp-colorize eval`: measure colorization quality on colour photos and write a report."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ..argument_types import VARIATION_METAVAR, int_at_least, non_negative_int, positive_int, variation_amount

NO_MODEL = "none"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate colorization on colour photos (report: Markdown, JSON, PNG grid)",
        description="Converts each colour photo to neutral gray with identical CIELAB L, "
                    "colorizes it, and reports PSNR, SSIM, CIEDE2000, colourfulness, luminance "
                    "drift, FID/KID (whole images and fixed crops) and classifier agreement, "
                    "with the gray input and any baselines as rows of the same table.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, metavar="DIR", help="folder of colour photos")
    source.add_argument("--dev-set", action="store_true",
                        help="the development photos of scikit-image, scikit-learn and matplotlib")
    source.add_argument("--validation-split", action="store_true",
                        help="the opaque photos of the prepared training set's held-out split "
                             "(`gcp-colorize data prepare`; use --crop-size 128, they are small)")
    parser.add_argument("--weights", default="default",
                        help=f"weights of the evaluated model (default: default; '{NO_MODEL}': "
                             f"only the gray input and baselines)")
    parser.add_argument("--baseline", action="append", default=[], metavar="NAME",
                        help="weights of a baseline (e.g. the no-prior ablation); repeatable")
    parser.add_argument("--alternatives", type=non_negative_int, default=3, metavar="N",
                        help="alternatives per photo from the evaluated model (default 3)")
    parser.add_argument("--variation", type=variation_amount, default=1.0, metavar=VARIATION_METAVAR,
                        help="scale of the random alternatives' latent noise (with --no-class-alternatives), "
                             "as in `colorize` (default 1)")
    parser.add_argument("--class-alternatives", action=argparse.BooleanOptionalAction, default=True,
                        help="alternatives from likely classes that colour differently (default), or "
                             "with --no-class-alternatives from latent noise, as in `colorize`")
    parser.add_argument("-o", "--output", type=Path, default=Path("out/eval"), metavar="REPORT_DIR",
                        help="report folder (default out/eval)")
    parser.add_argument("--crops", type=int_at_least(2), default=16,
                        help="random crops per photo for FID/KID (at least 2; default 16)")
    parser.add_argument("--crop-size", type=int_at_least(32), default=299,
                        help="crop side in pixels (at least 32; default 299)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the crops and the colorizations")
    parser.add_argument("--max-side", type=int_at_least(32), default=1024,
                        help="photos are shrunk to this long side (at least 32; default 1024)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: all cores)")
    parser.set_defaults(func=run)


def colorizer_method(weights: str, device: str | None, settings):
    """A `Method` that colorizes with the backend's Colorizer, its alternatives as `settings`
    (an evaluate.Settings: seed, variation, class_alternatives) ask."""
    try:
        from ..colorizer import Colorizer
    except ImportError as exc:
        raise RuntimeError(f"the Colorizer is not available ({exc})") from exc
    colorizer = Colorizer(weights=weights, device=device)

    def colorize(gray, alternatives):
        return [c.rgb for c in colorizer.colorize(gray, alternatives=alternatives, seed=settings.seed,
                                                         variation=settings.variation,
                                                         class_alternatives=settings.class_alternatives)]
    return colorize


def run(args: argparse.Namespace) -> int:
    import torch

    from ..model.classifier import ImageNetClassifier
    from .evaluate import GRAY_INPUT, Evaluation, Settings, gray_input, load_photos
    from .inception import InceptionFeatures
    from .report import write_report

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings(alternatives=args.alternatives, crop_size=args.crop_size,
                        crops_per_image=args.crops, seed=args.seed, max_side=args.max_side,
                        variation=args.variation, class_alternatives=args.class_alternatives)

    def log(message: str) -> None:
        print(message, flush=True)

    with tempfile.TemporaryDirectory(prefix="gcp-eval-photos-") as scratch:
        try:
            folder = args.images
            if args.dev_set:
                from .dev_set import gather_dev_set
                folder = Path(scratch)
                gather_dev_set(folder)
            elif args.validation_split:
                from .validation_split import link_validation_split
                folder = Path(scratch)
                link_validation_split(folder)
            photos = load_photos(folder, settings.max_side, log)
            methods = {GRAY_INPUT: gray_input}
            main = None if args.weights == NO_MODEL else args.weights
            for name in ([main] if main else []) + args.baseline:
                if name in methods:
                    raise ValueError(f"the weights {name!r} are named twice")
                methods[name] = colorizer_method(name, args.device, settings)
            evaluation = Evaluation(photos, settings, InceptionFeatures(args.device),
                                    ImageNetClassifier(args.device), log)
            results, outputs = evaluation.run(methods, main)
        except (FileNotFoundError, ValueError, RuntimeError) as exc:
            print(f"eval failed: {exc}", file=sys.stderr)
            return 1
    for path in write_report(args.output, results, outputs, photos):
        log(f"wrote {path}")
    return 0
