"""Round-trip time and throughput of the wire protocol, model step excluded.

A real backend process (the shipped server loop, queue, worker, signing) is started with
one of two benchmark-only stand-ins for the colorization step:

  echo      the worker returns the request's pixels as the result, untouched: pure
            protocol cost (client signs and sends, backend verifies, parses, queues,
            signs the reply, client verifies).
  identity  a Colorizer that returns its input: adds the pixel decode/encode of
            colorize_pixels (float conversion of every pixel) to the echo path.

Both exist ONLY in this script. Each request is an RGBA uint8 image with 0 alternatives
(one image each way). Throughput counts the bytes that cross the socket (request +
reply) and is shown next to an in-process memory copy of the same bytes, and next to
HMAC-SHA256 over them (each round trip computes four signatures).

    python benchmarks/bench_protocol.py [--sizes 1024 4096] [--repeats 5]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gcp_colorize.core import connection
from gcp_colorize.core.client import Client
from gcp_colorize.core.protocol import PixelImage, ResultImage


# -- backend side (runs in the subprocess) ---------------------------------------------------

class IdentityColorizerForBenchmark:
    """Benchmark-only stand-in: returns the input as the 'colorized' result."""

    info = {"device": "cpu", "weights": "benchmark-identity", "config": "none", "native_resolution": 0}

    def colorize(self, rgb, *, alternatives=0, seed=None, progress=lambda s, f: None, **_):
        from gcp_colorize.colorizer import Colorization

        return [Colorization(rgb, "colorized", seed or 0, 0, "none")]


def echo_pixels_for_benchmark(colorizer, image, mask=None, *, progress=lambda s, f: None, **_):
    """Benchmark-only replacement for colorize_pixels: the request's pixels come back as they are."""
    return [ResultImage(image, "colorized", 0, 0, "none")], {}


def serve(mode: str, connection_file: Path, endpoint: str) -> int:
    import torch

    from gcp_colorize.service import jobs
    from gcp_colorize.service.server import run_backend

    torch.set_num_threads(1)
    if mode == "echo":
        jobs.colorize_pixels = echo_pixels_for_benchmark  # this process only
    return run_backend(IdentityColorizerForBenchmark, connection_path=connection_file, endpoint=endpoint,
                       max_pixels=4096 * 4096, client_timeout_s=300)


# -- client side ------------------------------------------------------------------------------

def start_backend(mode: str, folder: Path, endpoint: str) -> tuple[subprocess.Popen, Path]:
    path = folder / f"{mode}.json"
    process = subprocess.Popen([sys.executable, __file__, "--serve", mode, "--connection-file", str(path),
                                "--endpoint", endpoint],
                               stdout=subprocess.DEVNULL, stderr=open(folder / f"{mode}.log", "wb"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if connection.read(path).pid == process.pid:
                return process, path
        except connection.ConnectionFileError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"backend ({mode}) did not start:\n{(folder / f'{mode}.log').read_text()}")


def timed(call, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def round_trips(client: Client, image: PixelImage, repeats: int, check_echo: bool) -> list[float]:
    def once():
        result = client.submit(image, alternatives=0).wait(timeout=600)
        if check_echo and bytes(result.main.image.data[:4096]) != bytes(image.data[:4096]):
            raise SystemExit("echo returned different pixels")

    once()  # warm-up (connection set-up, first allocations)
    return timed(once, repeats)


def megabytes_per_second(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", nargs="+", default=["echo", "identity"], choices=["echo", "identity"])
    parser.add_argument("--endpoint", default="tcp", help="tcp (loopback) or ipc, as for `serve`")
    parser.add_argument("--serve", choices=["echo", "identity"], help=argparse.SUPPRESS)
    parser.add_argument("--connection-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.connection_file, args.endpoint)

    rng = np.random.default_rng(0)
    images = {s: PixelImage(rng.integers(0, 256, (s, s, 4), np.uint8).tobytes(), s, s, "RGBA", "uint8")
              for s in args.sizes}
    key = os.urandom(32)
    print(f"{os.cpu_count()} CPU(s), {args.endpoint} endpoint; median of {args.repeats} runs "
          "(round trips: min in brackets)\n")
    print(f"{'':24}" + "".join(f"{f'{s}x{s} RGBA u8':>26}" for s in args.sizes))
    baselines = {}
    for s in args.sizes:
        data = images[s].data
        target = bytearray(data.nbytes)
        baselines[s] = {
            "memory copy, new buffer": timed(lambda: bytearray(data), args.repeats),
            "memory copy, reused buf": timed(lambda: target.__setitem__(slice(None), data), args.repeats),
            "HMAC-SHA256 (1x)": timed(lambda: hmac.new(key, data, hashlib.sha256).digest(), args.repeats)}
    print(f"{'payload each way':24}" + "".join(f"{f'{images[s].data.nbytes / 1e6:.1f} MB':>26}" for s in args.sizes))
    for name in baselines[args.sizes[0]]:
        cells = [(statistics.median(baselines[s][name]), images[s].data.nbytes) for s in args.sizes]
        print(f"{name:24}" + "".join(f"{f'{t * 1e3:.1f} ms, {megabytes_per_second(n, t):.0f} MB/s':>26}"
                                     for t, n in cells))

    with tempfile.TemporaryDirectory() as folder:
        for mode in args.modes:
            process, path = start_backend(mode, Path(folder), args.endpoint)
            try:
                with Client.connect(path, timeout=30) as client:
                    cells = []
                    for image in images.values():
                        nbytes = image.data.nbytes
                        times = round_trips(client, image, args.repeats, check_echo=mode == "echo")
                        median = statistics.median(times)
                        cells.append(f"{median * 1e3:.0f} ms [{min(times) * 1e3:.0f}], "
                                     f"{megabytes_per_second(2 * nbytes, median):.0f} MB/s")
                    print(f"{f'round trip, {mode}':24}" + "".join(f"{c:>26}" for c in cells))
                    client.shutdown()
            finally:
                process.wait(30)
    print("\nround-trip MB/s = (request + reply bytes) / median round-trip time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
