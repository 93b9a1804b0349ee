"""benchmarks/bench_model.py end to end on the tiny random weights (slow: it builds the
model in a worker process and runs every stage several times)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_model.py"


@pytest.mark.slow
def test_bench_reports_every_stage(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(BENCH), "--weights", "random:tiny", "--repeats", "1",
                           "--threads", "1", "--variants", "fp32", "fp32-direct", "bf16",
                           "--size", "96", "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "| **all stages** |" in done.stdout
    result = json.loads(out.read_text())["results"][0]
    assert result["config"] == "tiny" and result["input_size"] == 96
    for variant in ("fp32", "fp32-direct", "bf16"):
        stages = result["stages"][variant]
        assert set(stages) == {"imaging in", "classifier", "encoder E", "generator G",
                               "correspondence", "colorization", "imaging out"}
        assert all(s["wall_s"] > 0 and s["peak_bytes"] > 0 for s in stages.values())
    flops = result["flops"]
    for stage in ("classifier", "encoder E", "generator G", "correspondence", "colorization"):
        assert flops[stage]["direct"] >= flops[stage]["executed"] > 0
    assert result["drift_ab"]["fp32-direct"]["max"] < 0.01  # tiny widths: no Winograd
    assert result["drift_ab"]["bf16"]["max"] > 0  # the reduced precision was really used
