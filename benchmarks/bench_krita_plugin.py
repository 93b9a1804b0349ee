"""Time from triggering gcp_colorize_layer to its layers being inserted, inside real Krita.

For each weights name a real backend (`gcp-colorize serve --weights NAME`) is started and
warmed up with one request; then Krita 5.1.5 (GUI under Xvfb, the plugin installed with
`gcp-colorize install-plugin krita`, as in the host tests) opens a gray SIZE x SIZE photo
layer and triggers the action REPEATS times with the default settings (3 alternatives,
full-colour layers). The plugin's own clock runs from the action's trigger to the group
being in the document: reading the layer, sending it, queueing and the model (1 + 3
results), the reply, and building and inserting the group and its four layers. The same
request sent straight from a client (no Krita) is timed too, so the difference is what
Krita and the plugin add.

    python benchmarks/bench_krita_plugin.py [--weights random:tiny random:small] [--size 1024]
        [--repeats 3] [--threads 2]

random:small-semantic has the architecture of the embedded default weights (same
compute; random:small the same without the classifier maps' projection),
random:official that of the released GCP checkpoints. Needs Krita (scripts/install-krita.sh).
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

import numpy as np

from host_bench import ALTERNATIVES, arguments, client_seconds, gray_photo
from krita_harness import install_gui_driver, install_plugin, make_home, run_krita_gui  # noqa: E402 (path set by host_bench)
from service_harness import running_backend  # noqa: E402


def krita_runs(work: Path, runtime: Path, gray: np.ndarray, repeats: int) -> list[dict]:
    home = make_home(work / "home", runtime)
    install_plugin(home)
    photo = work / "photo"
    photo.mkdir()
    (photo / "photo.gray").write_bytes(gray.tobytes())
    (photo / "photo.json").write_text(json.dumps({"width": gray.shape[1], "height": gray.shape[0]}))
    result_path = photo / "result.json"
    install_gui_driver(home, {"result": str(result_path), "work": str(photo), "scenarios": ["warm", "timing"],
                              "screenshots": None, "timeout_s": 1800, "canvas": gray.shape[::-1],
                              "offset": (0, 0), "repeats": repeats})
    result = run_krita_gui(home, result_path, timeout=3600)
    runs = result["scenarios"]["timing"]
    failed = [run["message"] for run in runs if run["message_is_error"] or not run["last_run"]]
    if failed:
        raise SystemExit(f"the plugin failed: {failed}")
    return runs


def main() -> int:
    args = arguments(__doc__.splitlines()[0])

    gray = gray_photo(args.size)
    print(f"{args.size}x{args.size} gray layer (RGBA 8-bit sRGB), {ALTERNATIVES} alternatives, "
          f"backend with {args.threads} thread(s)")
    print(f"{'weights':16} {'trigger -> inserted, median (all) s':40} {'insert s':>9} {'client only s':>14}")
    with tempfile.TemporaryDirectory(prefix="bench-krita-") as temp:
        for index, weights in enumerate(args.weights):
            work = Path(temp) / f"backend-{index}"
            work.mkdir()
            with running_backend(work, "--threads", str(args.threads), model=weights) as backend:
                direct = client_seconds(backend, gray, "BGRA", args.repeats)
                runs = krita_runs(work, Path(backend.env["XDG_RUNTIME_DIR"]), gray, args.repeats)
            times = [run["last_run"]["trigger_to_inserted_s"] for run in runs]
            inserts = [run["last_run"]["insert_s"] for run in runs]
            loaded = {run["last_run"]["weights"] for run in runs} | {run["last_run"]["device"] for run in runs}
            assert weights in loaded, (weights, loaded)
            listed = ", ".join(f"{t:.2f}" for t in times)
            print(f"{weights:16} {statistics.median(times):6.2f} ({listed}){'':<{max(0, 32 - len(listed))}}"
                  f"{statistics.median(inserts):9.3f} {direct:14.2f}   [{', '.join(sorted(loaded))}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
