"""Time from calling plug-in-gcp-colorize to its layers being inserted, inside real GIMP.

For each weights name a real backend (`gcp-colorize serve --weights NAME`) is started and
warmed up with one request; then GIMP 3.0.4 (the trixie root of scripts/build-gimp-root.sh,
as in the host tests) opens a gray SIZE x SIZE photo and calls the plug-in through the PDB
REPEATS times, default arguments (3 alternatives, full-colour layers). The time measured
inside GIMP around the PDB call covers: the plug-in process start, reading the layer,
sending it, queueing and the model (all 1 + 3 results), the reply, and creating the group
and its four layers. The same request sent straight from a client (no GIMP) is timed too,
so the difference is what GIMP and the plug-in add.

    python benchmarks/bench_gimp_plugin.py [--weights random:tiny random:small] [--size 1024]
        [--repeats 3] [--threads 2]

random:small-semantic has the architecture of the embedded default weights (same
compute; random:small the same without the classifier maps' projection),
random:official that of the released GCP checkpoints. Needs root (or sudo) for the root.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from PIL import Image

from host_bench import ALTERNATIVES, arguments, client_seconds, gray_photo
from gimp_host import GimpSession, gimp_root, warmed_gimp_dir  # noqa: E402 (path set by host_bench)
from service_harness import running_backend  # noqa: E402


def main() -> int:
    args = arguments(__doc__.splitlines()[0])

    root = gimp_root()
    gray = gray_photo(args.size)
    print(f"{args.size}x{args.size} gray layer (8-bit), {ALTERNATIVES} alternatives, "
          f"backend with {args.threads} thread(s)")
    print(f"{'weights':16} {'GIMP call, median (all) s':34} {'client only, median s':>22}")
    with tempfile.TemporaryDirectory(prefix="bench-gimp-") as temp:
        temp = Path(temp)
        warmed = warmed_gimp_dir(root, temp / "warmed")
        Image.fromarray(gray).save(temp / "benchphoto.png")
        for index, weights in enumerate(args.weights):
            work = temp / f"backend-{index}"
            work.mkdir()
            with running_backend(work, "--threads", str(args.threads), model=weights) as backend:
                direct = client_seconds(backend, gray, "RGBA", args.repeats)
                session = GimpSession(root, work / "gimp", Path(backend.env["XDG_RUNTIME_DIR"]), warmed)
                photo = work / "gimp" / "benchphoto.png"
                photo.write_bytes((temp / "benchphoto.png").read_bytes())
                plan = [{"name": f"call{k}", "photo": str(photo)} for k in range(args.repeats)]
                report = session.run(plan, name="bench").report
            failed = [r for r in report if r["status"] != "success"]
            if failed:
                print(f"{weights}: the plug-in failed: {failed[0].get('message')}", file=sys.stderr)
                return 1
            seconds = [r["seconds"] for r in report]
            shown = f"{statistics.median(seconds):.2f} ({', '.join(f'{s:.2f}' for s in seconds)})"
            print(f"{weights:16} {shown:34} {direct:>22.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
