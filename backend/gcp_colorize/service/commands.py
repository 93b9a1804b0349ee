"""`gcp-colorize serve`, `colorize` and `demo`.

`colorize` and `demo` use the running backend when there is one (found through the
connection file) and otherwise load the model in this process; `--in-process` forces
the latter. Outputs: OUTDIR/NAME.png (main result) and OUTDIR/NAME.alt-K.png.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable

from ..argument_types import VARIATION_METAVAR, non_negative_int, positive_int, variation_amount
from ..core.protocol import PixelImage, ResultImage

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def register(subparsers) -> None:
    serve = subparsers.add_parser("serve",
                                  help="run the colorization backend that the plugins and `colorize` use")
    serve.add_argument("--weights", default="default",
                       help="weights name (default, official, a directory, random:tiny)")
    serve.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available, else CPU)")
    serve.add_argument("--reduced-precision", action="store_true",
                       help="bf16 (CPU) / fp16 (CUDA) inference: faster only where the hardware "
                            "supports it natively (see docs/BENCHMARKS.md)")
    serve.add_argument("--max-pixels", type=positive_int,
                       help="largest width*height accepted (default: sized for this machine)")
    serve.add_argument("--endpoint", default="tcp",
                       help="'tcp' (loopback, free port; default), 'ipc' (socket file in the runtime "
                            "dir) or a ZeroMQ endpoint")
    serve.add_argument("--connection-file", type=Path, help="where to write the connection file (default: runtime dir)")
    serve.add_argument("--queue-size", type=positive_int, default=4, help="jobs that may wait; more get 'busy'")
    serve.add_argument("--client-timeout", type=float, default=30.0,
                       help="seconds without heartbeat after which a client's job is cancelled")
    serve.add_argument("--threads", type=positive_int, help="torch CPU threads (default: all cores)")
    serve.add_argument("--stop", action="store_true", help="stop the running backend instead of starting one")
    serve.set_defaults(func=_serve)

    colorize = subparsers.add_parser("colorize", help="colorize image files or folders of images into OUTDIR")
    colorize.add_argument("inputs", nargs="+", metavar="INPUT", type=Path, help="image files or folders")
    colorize.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR")
    _add_colorize_options(colorize)
    colorize.add_argument("--alternatives", type=non_negative_int, default=3, help="alternative colorings per image")
    colorize.add_argument("--seed", type=non_negative_int, help="seed of the random alternatives (default: random)")
    colorize.add_argument("--class", dest="class_choice", type=_class_choice, default="auto", metavar="auto|INDEX|NAME",
                          help="ImageNet class of the colour prior (default: auto, from the classifier)")
    colorize.add_argument("--class-alternatives", action=argparse.BooleanOptionalAction, default=True,
                          help="alternatives from likely classes that colour differently (default); "
                               "--no-class-alternatives: random latent noise from the seed and the variation")
    colorize.add_argument("--walk", type=_walk, metavar="DIRECTION:AMOUNT",
                          help="move along a latent direction, e.g. saturation:2")
    colorize.add_argument("--variation", type=variation_amount, default=1.0, metavar=VARIATION_METAVAR,
                          help="how far random alternatives (--no-class-alternatives) move from the main "
                               "result: the scale of their latent noise (default 1, the paper's)")
    colorize.set_defaults(func=_colorize)

    demo = subparsers.add_parser("demo", help="colorize the bundled sample gray photo with the default weights")
    demo.add_argument("-o", "--output", type=Path, default=Path("out/demo"), metavar="OUTDIR")
    _add_colorize_options(demo)
    # The demo shows the shipped model: never a running backend with other weights.
    demo.set_defaults(func=_demo, weights="default", alternatives=3, seed=123, class_choice="auto",
                      class_alternatives=True, walk=None, variation=1.0)


def _add_colorize_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", help="weights for in-process runs (default: default)")
    parser.add_argument("--device", help="device for in-process runs (default: CUDA when available)")
    parser.add_argument("--in-process", action="store_true", help="load the model here even if a backend is running")


# -- argument types ----------------------------------------------------------------------

def _class_choice(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _walk(text: str) -> tuple[str, float]:
    name, _, amount = text.rpartition(":")
    try:
        value = float(amount)
    except ValueError:
        value = None
    if not name or value is None:
        raise argparse.ArgumentTypeError(f"expected DIRECTION:AMOUNT (e.g. saturation:2), got {text!r}")
    return name, value


# -- serve ---------------------------------------------------------------------------------

def _serve(args) -> int:
    from ..core import connection
    from ..core.client import Client, ClientError

    if args.stop:
        try:
            Client.connect(args.connection_file).shutdown()
        except ClientError as exc:
            print(f"gcp-colorize: {exc}", file=sys.stderr)
            return 1
        print("backend stopped")
        return 0

    import torch
    import zmq

    from ..colorizer import Colorizer
    from ..weights import WeightsError
    from .server import run_backend

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    if not _device_usable(args.device):
        return 1
    try:
        code = run_backend(lambda: Colorizer(args.weights, args.device, args.reduced_precision),
                           connection_path=args.connection_file, endpoint=args.endpoint,
                           max_pixels=args.max_pixels, queue_size=args.queue_size,
                           client_timeout_s=args.client_timeout,
                           on_ready=lambda info: print(f"gcp-colorize backend ready on {info.endpoint} "
                                                       f"(pid {info.pid})", flush=True))
    except zmq.ZMQError as exc:
        print(f"gcp-colorize: cannot listen on {args.endpoint}: {exc}", file=sys.stderr)
        return 1
    except (connection.ConnectionFileError, WeightsError) as exc:
        print(f"gcp-colorize: {exc}", file=sys.stderr)
        return 1
    return code


def _device_usable(device: str | None) -> bool:
    """False (after saying why) for a device this machine does not have."""
    import torch

    if device is None:
        return True
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        print(f"gcp-colorize: cannot use device {device!r}: {exc}", file=sys.stderr)
        return False
    return True


# -- colorize and demo -----------------------------------------------------------------------

Runner = Callable[[PixelImage, Callable[[str, float], None]], list[ResultImage]]


def _colorize(args) -> int:
    try:
        sources = _collect_inputs(args.inputs)
    except ValueError as exc:
        print(f"gcp-colorize: {exc}", file=sys.stderr)
        return 2
    runner = _make_runner(args)
    if runner is None:
        return 1
    failures = 0
    for index, path in enumerate(sources, 1):
        try:
            image = read_image(path)
        except (OSError, ValueError) as exc:
            print(f"gcp-colorize: skipping {path}: {exc}", file=sys.stderr)
            failures += 1
            continue
        try:
            written = _colorize_one(runner, image, args.output, path.stem, f"[{index}/{len(sources)}] {path.name}")
        except _RunFailed as exc:
            print(f"gcp-colorize: {path}: {exc}", file=sys.stderr)
            failures += 1
            continue
        print(f"{path} -> {', '.join(str(p) for p in written)}")
    return 1 if failures else 0


def _demo(args) -> int:
    try:
        from skimage import data
    except ImportError:
        print("gcp-colorize: the demo photo comes from scikit-image; install it with "
              "pip install 'gcp-colorize[demo]'", file=sys.stderr)
        return 1
    photo = data.camera()  # a real 512x512 grayscale photograph
    image = PixelImage(photo.tobytes(), photo.shape[1], photo.shape[0], "GRAY", "uint8")
    runner = _make_runner(args)
    if runner is None:
        return 1
    args.output.mkdir(parents=True, exist_ok=True)
    source = args.output / "camera.input.png"
    write_png(image, source)
    try:
        written = _colorize_one(runner, image, args.output, "camera", "camera")
    except _RunFailed as exc:
        print(f"gcp-colorize: {exc}", file=sys.stderr)
        return 1
    print(f"sample gray photo: {source}")
    print(f"colorized: {written[0]}")
    for path in written[1:]:
        print(f"alternative: {path}")
    return 0


class _RunFailed(Exception):
    pass


def _collect_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given, folders expanded to their image files (sorted, not recursive);
    refuses two inputs that would write the same output names."""
    sources = []
    for path in inputs:
        if path.is_dir():
            sources += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            sources.append(path)
        else:
            raise ValueError(f"{path} does not exist")
    if not sources:
        raise ValueError("no image files found in the inputs")
    stems: dict[str, Path] = {}
    for path in sources:
        if path.stem in stems:
            raise ValueError(f"{stems[path.stem]} and {path} would both write {path.stem}.png; rename one")
        stems[path.stem] = path
    return sources


def _make_runner(args) -> Runner | None:
    """Colorize through the running backend when it has the asked-for weights (any, without
    --weights), else (or with --in-process) in this process."""
    from ..core.client import BackendNotRunning, Client, ClientError, JobFailed, RequestRejected

    options = dict(alternatives=args.alternatives, seed=args.seed, class_choice=args.class_choice,
                   class_alternatives=args.class_alternatives, walk=args.walk, variation=args.variation)
    client = None
    if not args.in_process:
        try:
            client = Client.connect()
        except BackendNotRunning:
            pass
        except ClientError as exc:
            print(f"gcp-colorize: not using the running backend: {exc}", file=sys.stderr)
        if client is not None and args.weights and args.weights != client.backend.weights:
            print(f"gcp-colorize: the running backend has weights {client.backend.weights!r}, not "
                  f"{args.weights!r}", file=sys.stderr)
            client.close()
            client = None
    if client is not None:
        print(f"using the backend at {client.backend.endpoint} ({client.backend.device}, "
              f"weights {client.backend.weights})", file=sys.stderr)

        def remote(image: PixelImage, progress: Callable[[str, float], None]) -> list[ResultImage]:
            try:
                return client.submit(image, **options).wait(on_progress=progress).images
            except (RequestRejected, JobFailed) as exc:
                raise _RunFailed(f"{exc.message} ({exc.code})") from None
        return remote

    from ..colorizer import Colorizer, UnknownChoice, colorize_pixels
    from ..imaging import NonFiniteInput
    from ..weights import WeightsError

    weights = args.weights or "default"
    if not _device_usable(args.device):
        return None
    try:
        colorizer = Colorizer(weights, args.device)
    except WeightsError as exc:
        print(f"gcp-colorize: cannot load the weights {weights!r}: {exc}", file=sys.stderr)
        return None
    print(f"colorizing in this process ({colorizer.info['device']}, weights {colorizer.info['weights']})",
          file=sys.stderr)

    def local(image: PixelImage, progress: Callable[[str, float], None]) -> list[ResultImage]:
        try:
            return colorize_pixels(colorizer, image, progress=progress, **options)[0]
        except (UnknownChoice, NonFiniteInput) as exc:
            raise _RunFailed(str(exc)) from None
    return local


def _colorize_one(runner: Runner, image: PixelImage, outdir: Path, name: str, title: str) -> list[Path]:
    bar = ProgressBar(title)
    try:
        results = runner(image, bar.update)
    finally:
        bar.close()
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for k, result in enumerate(results):
        path = outdir / (f"{name}.png" if k == 0 else f"{name}.alt-{k}.png")
        write_png(result.image, path)
        written.append(path)
    return written


class ProgressBar:
    """One status line on stderr: redrawn in place on a terminal, one line per stage otherwise."""

    WIDTH = 30

    def __init__(self, title: str, stream=sys.stderr):
        self.title, self.stream = title, stream
        self.interactive = stream.isatty()
        self._stage = None

    def update(self, stage: str, fraction: float) -> None:
        if self.interactive:
            filled = round(self.WIDTH * min(max(fraction, 0.0), 1.0))
            self.stream.write(f"\r{self.title} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                              f"{fraction:4.0%} {stage:<12}")
            self.stream.flush()
        elif stage != self._stage:
            self.stream.write(f"{self.title}: {stage} ({fraction:.0%})\n")
        self._stage = stage

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()


# -- files -------------------------------------------------------------------------------------

def read_image(path: Path) -> PixelImage:
    """An image file as protocol pixels (8-bit gray/RGB(A), 16-bit gray), EXIF orientation applied."""
    import numpy as np
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as opened:
            picture = ImageOps.exif_transpose(opened)
            picture.load()
    except Image.DecompressionBombError as exc:
        raise ValueError(str(exc)) from None
    if picture.mode in ("I", "I;16", "I;16B", "I;16L"):
        pixels = np.clip(np.asarray(picture, dtype=np.int64), 0, 65535).astype("<u2")
        return PixelImage(pixels.tobytes(), picture.width, picture.height, "GRAY", "uint16")
    has_alpha = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
    is_gray = picture.mode in ("1", "L", "LA", "F")
    mode = ("LA" if has_alpha else "L") if is_gray else ("RGBA" if has_alpha else "RGB")
    layout = {"L": "GRAY", "LA": "GRAYA", "RGB": "RGB", "RGBA": "RGBA"}[mode]
    return PixelImage(picture.convert(mode).tobytes(), picture.width, picture.height, layout, "uint8")


def write_png(image: PixelImage, path: Path) -> None:
    """Save protocol pixels as PNG (8 bits per channel; 16-bit and float samples are rounded)."""
    import numpy as np
    from PIL import Image

    from ..imaging import decode

    decoded = decode(image)
    channels = [decoded.rgb[..., 0]] if image.layout in ("GRAY", "GRAYA") else [decoded.rgb[..., c] for c in range(3)]
    planes = [np.rint(c * 255) for c in channels]
    if decoded.alpha is not None:
        alpha = decoded.alpha.astype(np.float32)
        planes.append(np.rint(alpha / 257) if image.dtype == "uint16" else
                      alpha if image.dtype == "uint8" else np.rint(np.clip(alpha, 0, 1) * 255))
    Image.fromarray(np.stack(planes, -1).astype(np.uint8).squeeze(-1) if len(planes) == 1
                    else np.stack(planes, -1).astype(np.uint8)).save(path)
