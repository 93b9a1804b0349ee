"""A real backend process whose colorizer is a test double, for the protocol, queue,
cancel and limit tests that must not depend on the model's speed.

Everything but ``Colorizer.colorize`` is the shipped backend (server loop, job queue,
worker, imaging decode/encode, connection file, lock). The double honours the Colorizer
contract: full-size results with the input's CIELAB L and a constant tint per result
(through the shipped imaging.colorized_rgb), progress per stage, ``should_stop`` polled
while it "works" for ``--stage-seconds``.

Run as a script: python tests/backend_double.py --connection-file PATH [options]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import torch

from gcp_colorize import imaging
from gcp_colorize.colorizer import Cancelled, Colorization, UnknownChoice
from gcp_colorize.core.protocol import ErrorCode
from gcp_colorize.service.server import run_backend

KNOWN_DIRECTIONS = ("saturation",)
STAGES = ("classify", "model", "upsample")


class TintColorizerDouble:
    """Test double of gcp_colorize.colorizer.Colorizer (not shipped)."""

    info = {"device": "cpu", "weights": "test-double", "config": "none", "native_resolution": 0,
            "directions": list(KNOWN_DIRECTIONS)}

    def __init__(self, stage_seconds: float):
        self.stage_seconds = stage_seconds

    def colorize(self, rgb, *, alternatives=3, seed=None, class_choice="auto", class_alternatives=True,
                 walk=None, variation=1.0, progress=lambda stage, fraction: None, should_stop=lambda: False):
        if isinstance(class_choice, str) and class_choice not in ("auto", "tench"):
            raise UnknownChoice(ErrorCode.UNKNOWN_CLASS, f"no ImageNet class named {class_choice!r}")
        if walk is not None and walk[0] not in KNOWN_DIRECTIONS:
            raise UnknownChoice(ErrorCode.UNKNOWN_DIRECTION, f"unknown direction {walk[0]!r}")
        for done, stage in enumerate(STAGES):
            progress(stage, done / len(STAGES))
            until = time.monotonic() + self.stage_seconds
            while time.monotonic() < until:
                if should_stop():
                    raise Cancelled
                time.sleep(0.01)
        lightness = imaging.lightness(rgb)
        seed = 0 if seed is None else seed
        results = []
        for k in range(1 + alternatives):
            # Guide coefficients with zero slope: the same a*b* everywhere; alternatives move
            # from the main tint, random ones by `variation` as the model's latent noise does.
            step = k if class_alternatives else k * variation
            tint = torch.tensor([0.0, 0.0, 20.0 + 15 * step, -10.0 + 5 * step]).view(1, 4, 1, 1)
            results.append(Colorization(imaging.colorized_rgb(lightness, tint),
                                        "colorized" if k == 0 else f"alternative {k}", seed, 0, "tench"))
        progress("upsample", 1.0)
        return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connection-file", required=True)
    parser.add_argument("--stage-seconds", type=float, default=0.0)
    parser.add_argument("--max-pixels", type=int, default=1 << 20)
    parser.add_argument("--queue-size", type=int, default=4)
    parser.add_argument("--client-timeout", type=float, default=30.0)
    parser.add_argument("--heartbeat", type=float, default=2.0)
    parser.add_argument("--endpoint", default="tcp")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    return run_backend(lambda: TintColorizerDouble(args.stage_seconds), connection_path=args.connection_file,
                       endpoint=args.endpoint, max_pixels=args.max_pixels, queue_size=args.queue_size,
                       client_timeout_s=args.client_timeout, heartbeat_s=args.heartbeat)


if __name__ == "__main__":
    sys.exit(main())
