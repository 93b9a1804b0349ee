"""Time, peak memory and FLOPs of every stage of one colorization, per weights set.

Stages (as `Colorizer.colorize` runs them, one image, no alternatives):

  imaging in     CIELAB L of the photo, aspect-kept square at the model resolution, x_l
  classifier     EfficientNet-Lite0 on the neutral-gray picture of x_l (the auto class)
  encoder E      z = E(x_l, class)
  generator G    reference image and features = G(z, class)
  correspondence both D passes (one batch), embeddings, softmax correlation, patch warp
  colorization   the SPADE colorization net
  imaging out    guided chroma upsampling to full resolution, Lab -> sRGB in gamut

Each weights set (default: random full-size weights of the official and the small
configuration; the shipped `default` weights are small ones, trained) runs in a fresh
subprocess. Variants are interleaved inside it, one repeat of each in turn, so load on
the machine hits them alike:

  fp32           the default path
  fp32-direct    fp32 with the Winograd 3x3 path off (model/winograd.py), for comparison
  bf16 / fp16    the reduced-precision mode (model/precision.py): bf16 on CPU, fp16 and
                 bf16 on CUDA

Time: warm (one untimed run first), median of --repeats, wall and process CPU time (CPU
time is less disturbed by other processes on a shared machine; with N threads it is up
to N x wall). Peak memory: peak RSS of the process during the stage (Linux: VmHWM reset
through /proc/self/clear_refs before each stage; it includes the weights of every
network held), on CUDA the peak allocated device memory. FLOPs: counted by
torch.utils.flop_counter (convolutions, matmuls) plus the deformable convolution's
weighted gather (2 per gathered value); "direct" counts every 3x3 convolution as a direct
one (the model's nominal cost), "executed" what the Winograd path really multiplies.
Chroma drift of the reduced precision: |delta ab| (CIELAB, per pixel, Euclidean) of the
model output against fp32 on skimage's astronaut photo turned gray.

On a loaded machine OpenMP threads that spin while waiting for a descheduled peer burn
CPU and wall time (seen here: 2 threads at load 5, 100 s instead of 32 s per image);
`--omp-wait-policy passive` makes them sleep, and then CPU time is the work done.

    python benchmarks/bench_model.py [--weights random:official random:small] [--threads 2]
        [--repeats 3] [--variants fp32 fp32-direct bf16] [--size 256] [--json out.json]
        [--omp-wait-policy passive]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

STAGES = ("imaging in", "classifier", "encoder E", "generator G", "correspondence",
          "colorization", "imaging out")
MODEL_STAGES = ("encoder E", "generator G", "correspondence", "colorization")
CLEAR_REFS = Path("/proc/self/clear_refs")


# -- measuring ---------------------------------------------------------------------------------

def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class PeakMemory:
    """Peak memory of one stage: process RSS (CPU) or allocated device memory (CUDA).

    CPU: before the stage, freed heap memory goes back to the OS (glibc malloc_trim, so
    RSS holds only live data) and the RSS high-water mark is reset; after it, VmHWM is
    the stage's peak. Trimming slows the next allocations, so this runs in its own pass,
    not in the timed ones."""

    def __init__(self, device):
        import ctypes
        import ctypes.util

        import torch

        self.torch, self.cuda = torch, device.type == "cuda"
        self.resettable = not self.cuda and CLEAR_REFS.exists()
        libc = ctypes.util.find_library("c")
        self.malloc_trim = getattr(ctypes.CDLL(libc), "malloc_trim", None) if libc else None

    def start(self) -> int:
        """Reset the peak; returns the memory in use now."""
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()
            return self.torch.cuda.memory_allocated()
        gc.collect()
        if self.malloc_trim is not None:
            self.malloc_trim(0)
        if self.resettable:
            CLEAR_REFS.write_text("5")  # VmHWM := current RSS
        return _status_kib("VmRSS") * 1024

    def peak_bytes(self) -> int:
        if self.cuda:
            return self.torch.cuda.max_memory_allocated()
        if self.resettable:
            return _status_kib("VmHWM") * 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # whole process


def embedding_bag_flops(weight, indices, *args, out_shape=None, **kwargs) -> int:
    """The deformable convolution's weighted gather: a multiply and an add per value."""
    return 2 * math.prod(indices) * weight[1]


def count_flops(fn) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    bag_ops = {torch.ops.aten._embedding_bag_forward_only: embedding_bag_flops,
               torch.ops.aten._embedding_bag: embedding_bag_flops}
    with FlopCounterMode(display=False, custom_mapping=bag_ops) as counter:
        fn()
    return counter.get_total_flops()


# -- the worker: one weights set, every variant ------------------------------------------------

def astronaut_gray(size: int):
    """skimage's astronaut photo as gray sRGB (H, W, 3) float32 in [0, 1], size x size."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from skimage import data

    from gcp_colorize.model.lab import lab_to_rgb, rgb_to_lab

    rgb = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255
    lightness = rgb_to_lab(F.interpolate(rgb, size=(size, size), mode="area"))[:, :1]
    gray = lab_to_rgb(torch.cat([lightness, torch.zeros_like(lightness).expand(-1, 2, -1, -1)], 1))
    return np.ascontiguousarray(gray[0].permute(1, 2, 0).numpy(), np.float32)


def variant_context(name: str, device):
    """The context a variant runs in."""
    import contextlib

    import torch

    from gcp_colorize.model import winograd
    from gcp_colorize.model.precision import reduced_precision

    @contextlib.contextmanager
    def winograd_off():
        winograd.ENABLED = False
        try:
            yield
        finally:
            winograd.ENABLED = True

    if name == "fp32":
        return contextlib.nullcontext()
    if name == "fp32-direct":
        return winograd_off()
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if name not in dtypes:
        raise SystemExit(f"unknown variant {name!r}")
    return reduced_precision(device, dtypes[name])


def stage_functions(colorizer, rgb):
    """The stages of `Colorizer.colorize` for one image (no alternatives), as a list of
    (name, fn(state) -> None) that pass their results on in `state`."""
    import torch

    from gcp_colorize import imaging
    from gcp_colorize.model.lab import AB_SCALE, rgb_to_model_input

    model, device, resolution = colorizer.model, colorizer.device, colorizer.config.resolution

    def imaging_in(s):
        s["lightness"] = imaging.lightness(rgb, device)
        square, s["placement"] = imaging.fit_square(imaging.to_tensor(rgb, device), resolution,
                                                       imaging.border_margin(resolution))
        s["x_l"] = rgb_to_model_input(square)
        s["guide_low"] = imaging.crop_placed((s["x_l"] + 1) * 50, s["placement"])

    def classify(s):
        # The Colorizer's own automatic class choice (classifier on the gray picture), and
        # from the same pass the maps (None unless the config reads them).
        logits, s["semantic"] = model.read_gray(colorizer.classifier, s["x_l"])
        chosen = colorizer._classes(logits[0], "auto", 0)[0]
        s["class"] = torch.tensor([chosen % colorizer.config.n_classes], device=device)

    def encoder(s):
        s["z"] = model.infer_z(s["x_l"], s["class"])

    def generator(s):
        s["reference"], s["features"] = model.reference(s["z"], s["class"])

    def correspondence(s):
        s["warped"] = model.warp(s["x_l"], s["reference"], s["features"])

    def colorization(s):
        s["ab_norm"] = model.colorization(s["x_l"], s["warped"], s["semantic"]).float()

    def imaging_out(s):
        chroma = imaging.crop_placed(s["ab_norm"] * AB_SCALE, s["placement"])
        s["rgb"] = imaging.colorized_rgb(s["lightness"],
                                         imaging.guide_coefficients(chroma, s["guide_low"]))

    return list(zip(STAGES, (imaging_in, classify, encoder, generator, correspondence,
                             colorization, imaging_out)))


def run_worker(args) -> dict:
    import torch

    from gcp_colorize.colorizer import Colorizer
    from gcp_colorize.model.lab import AB_SCALE

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    colorizer = Colorizer(args.weights_name)
    build_s = time.perf_counter() - started
    if not colorizer.config.gan_prior:
        raise SystemExit(f"{args.weights_name}: no GAN prior (ablation weights), no stages to time")
    device = colorizer.device
    rgb = astronaut_gray(args.size)
    stages = stage_functions(colorizer, rgb)
    memory = PeakMemory(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def run_pipeline(variant: str, times: dict | None = None, peaks: dict | None = None):
        """One colorization; per stage, append wall/CPU seconds to `times` or the peak
        and starting memory to `peaks`."""
        state = {}
        with torch.inference_mode():
            for name, fn in stages:
                # Only the model stages run in the variant's precision, as they would in the
                # Colorizer; classifier and imaging stay fp32.
                context = variant_context(variant, device) if name in MODEL_STAGES \
                    else variant_context("fp32", device)
                sync()
                before = memory.start() if peaks is not None else 0
                wall, cpu = time.perf_counter(), time.process_time()
                with context:
                    fn(state)
                sync()
                if times is not None:
                    entry = times.setdefault(name, {"wall": [], "cpu": []})
                    entry["wall"].append(time.perf_counter() - wall)
                    entry["cpu"].append(time.process_time() - cpu)
                if peaks is not None:
                    peaks[name] = {"peak": memory.peak_bytes(), "before": before}
        return state

    variants = [v for v in args.variants if not (v == "fp16" and device.type == "cpu")]
    times = {v: {} for v in variants}
    peaks = {v: {} for v in variants}
    outputs = {}
    loads = [os.getloadavg()[0]]
    for variant in variants:  # warm-up, and the outputs compared below
        outputs[variant] = run_pipeline(variant)["ab_norm"]
    for _ in range(args.repeats):
        for variant in variants:
            run_pipeline(variant, times=times[variant])
        loads.append(os.getloadavg()[0])
    for variant in variants:
        run_pipeline(variant, peaks=peaks[variant])

    flops = {}
    with torch.inference_mode():
        for counted, variant in (("executed", "fp32"), ("direct", "fp32-direct")):
            replay = {}
            for name, fn in stages:
                with variant_context(variant, device):
                    flops.setdefault(name, {})[counted] = count_flops(lambda: fn(replay))

    end_to_end = []
    with torch.inference_mode():
        for _ in range(args.repeats + 1):
            wall = time.perf_counter()
            colorizer.colorize(rgb, alternatives=0, seed=0)
            sync()
            end_to_end.append(time.perf_counter() - wall)

    drift = {}
    if "fp32" not in outputs:
        outputs["fp32"] = run_pipeline("fp32")["ab_norm"]
    for variant, ab_norm in outputs.items():
        distance = ((ab_norm - outputs["fp32"]) * AB_SCALE).pow(2).sum(1).sqrt()  # CIELAB units
        drift[variant] = {"max": distance.max().item(), "mean": distance.mean().item()}

    return {
        "weights": args.weights_name, "config": colorizer.config.name, "device": str(device),
        "threads": args.threads,
        "resolution": colorizer.config.resolution, "input_size": args.size,
        "build_s": build_s, "load_average": loads, "flops": flops, "drift_ab": drift,
        "end_to_end_s": statistics.median(end_to_end[1:]),
        "process_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "peak_is_per_stage": memory.resettable or device.type == "cuda",
        "stages": {v: {name: {"wall_s": statistics.median(r["wall"]),
                              "cpu_s": statistics.median(r["cpu"]),
                              "peak_bytes": peaks[v][name]["peak"],
                              "start_bytes": peaks[v][name]["before"]}
                       for name, r in rec.items()}
                   for v, rec in times.items()},
    }


# -- the parent: one subprocess per weights set, the report -------------------------------------

def machine_summary() -> str:
    import torch

    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return (f"{model}, {os.cpu_count()} logical CPUs, torch {torch.__version__} "
            f"(CPU capability {torch.backends.cpu.get_cpu_capability()}), "
            f"CUDA {'yes: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no'}")


def gib(n: float) -> str:
    return f"{n / 2**30:.2f}"


def report(result: dict) -> str:
    lines = [f"### {result['weights']}: config {result['config']} (R={result['resolution']}, "
             f"input {result['input_size']}^2, "
             f"{result['device']}, {result['threads']} threads)",
             f"load average during the run: "
             f"{min(result['load_average']):.2f} .. {max(result['load_average']):.2f}; "
             f"build {result['build_s']:.1f} s; end-to-end Colorizer.colorize (fp32, no "
             f"alternatives) {result['end_to_end_s']:.2f} s wall",
             ""]
    variants = list(result["stages"])
    peak_name = ("peak RSS GiB (+ over its start)" if result["device"] == "cpu"
                 else "peak alloc GiB (+ over its start)")
    header = ["stage", "GFLOP direct", "GFLOP executed"]
    for v in variants:
        header += [f"{v} wall s", f"{v} CPU s", f"{v} {peak_name}"]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    totals = {v: [0.0, 0.0, 0] for v in variants}
    flop_totals = [0, 0]
    for name in STAGES:
        f = result["flops"][name]
        row = [name, f"{f['direct'] / 1e9:.1f}", f"{f['executed'] / 1e9:.1f}"]
        flop_totals[0] += f["direct"]
        flop_totals[1] += f["executed"]
        for v in variants:
            s = result["stages"][v][name]
            row += [f"{s['wall_s']:.3f}", f"{s['cpu_s']:.3f}",
                    f"{gib(s['peak_bytes'])} (+{(s['peak_bytes'] - s['start_bytes']) / 2**20:.0f} MiB)"]
            totals[v][0] += s["wall_s"]
            totals[v][1] += s["cpu_s"]
            totals[v][2] = max(totals[v][2], s["peak_bytes"])
        lines.append("| " + " | ".join(row) + " |")
    row = ["**all stages**", f"{flop_totals[0] / 1e9:.1f}", f"{flop_totals[1] / 1e9:.1f}"]
    for v in variants:
        row += [f"**{totals[v][0]:.2f}**", f"{totals[v][1]:.2f}", gib(totals[v][2])]
    lines.append("| " + " | ".join(row) + " |")
    model_rows = ["model (E+G+corr+colorization)"]
    for v in variants:
        stages = result["stages"][v]
        model_rows.append(f"{v}: {sum(stages[s]['wall_s'] for s in MODEL_STAGES):.2f} s wall, "
                          f"{sum(stages[s]['cpu_s'] for s in MODEL_STAGES):.2f} s CPU, peak "
                          f"{gib(max(stages[s]['peak_bytes'] for s in MODEL_STAGES))} GiB")
    lines += ["", "; ".join(model_rows)]
    drift = "; ".join(f"{v}: max {d['max']:.3g}, mean {d['mean']:.3g}"
                      for v, d in result["drift_ab"].items() if v not in ("fp32", "fp32-direct"))
    direct = result["drift_ab"].get("fp32-direct")
    lines.append(f"chroma |delta ab| vs fp32 (astronaut, gray): {drift or 'no reduced-precision variant'}"
                 + (f"; fp32-direct: max {direct['max']:.2g}" if direct else ""))
    if not result["peak_is_per_stage"]:
        lines.append("(peak memory is the process peak so far: /proc/self/clear_refs unavailable)")
    lines.append(f"process peak RSS {gib(result['process_peak_rss_bytes'])} GiB")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", nargs="+", default=["random:official", "random:small"],
                        help="weights names (see ARCHITECTURE.md)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=["fp32", "fp32-direct", "bf16", "fp16"],
                        help="fp16 runs only on CUDA")
    parser.add_argument("--size", type=int, default=256, help="input photo size (square)")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--omp-wait-policy", choices=["active", "passive"],
                        help="OMP_WAIT_POLICY of the workers (default: inherited)")
    parser.add_argument("--worker", metavar="WEIGHTS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1 or args.size < 8:
        parser.error("--repeats and --threads must be >= 1, --size >= 8")
    if args.worker:
        args.weights_name = args.worker
        print(json.dumps(run_worker(args)))
        return 0

    print(f"{machine_summary()}; OMP_WAIT_POLICY="
          f"{(args.omp_wait_policy or os.environ.get('OMP_WAIT_POLICY', 'default')).upper()}",
          flush=True)
    results = []
    for weights in args.weights:
        command = [sys.executable, __file__, "--worker", weights, "--threads", str(args.threads),
                   "--repeats", str(args.repeats), "--size", str(args.size),
                   "--variants", *args.variants]
        env = dict(os.environ)
        if args.omp_wait_policy:
            env["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            raise SystemExit(f"benchmark of {weights!r} failed (exit {done.returncode})")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print("\n" + report(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_summary(), "results": results},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
