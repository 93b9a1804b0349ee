"""Run-state files of a training run: atomic checkpoints and the RNG states.

A checkpoint holds everything needed to continue a run exactly where it stopped: the
stage's networks, optimisers and EMA, the step, the training time spent, the position in
the batch order and every random number generator that the step touches. It is written
to a temporary file and renamed, so a run killed while saving keeps its last checkpoint;
the one before is kept as `checkpoint.prev.pt`. Loading uses `weights_only=True` (no
arbitrary code from pickle): only tensors and plain Python values are stored.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from ..model.config import GCPConfig

CHECKPOINT_NAME = "checkpoint.pt"
PREVIOUS_NAME = "checkpoint.prev.pt"


def capture_rng() -> dict:
    """The states of the torch (CPU and CUDA), NumPy and Python generators."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(run_dir: Path, state: dict) -> Path:
    """Write `state` as the run's checkpoint atomically; keep the previous one."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CHECKPOINT_NAME
    tmp = run_dir / (CHECKPOINT_NAME + ".tmp")
    torch.save(state, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    if path.exists():
        os.replace(path, run_dir / PREVIOUS_NAME)
    os.replace(tmp, path)
    return path


def load_checkpoint(run_dir: Path, map_location: str | torch.device = "cpu",
                    mmap: bool = False) -> dict | None:
    """The run's checkpoint, or None for a new run. A damaged newest file (cut off while
    written by an older version of this code) falls back to the previous one loudly.
    `mmap`: tensors are mapped from the file, read only when touched."""
    path = run_dir / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location=map_location, mmap=mmap, weights_only=True)
    except (RuntimeError, EOFError) as exc:
        previous = run_dir / PREVIOUS_NAME
        if not previous.exists():
            raise RuntimeError(f"checkpoint {path} cannot be read ({exc}) and there is no "
                               f"previous one; move the run directory away to start anew") from exc
        print(f"warning: {path} cannot be read ({exc}); using {previous}")
        return torch.load(previous, map_location=map_location, mmap=mmap, weights_only=True)


def saved_config_name(run_dir: Path) -> str | None:
    """The name of the model config the run in `run_dir` was made for; None when the folder
    holds no readable checkpoint. Memory-mapped: the networks' tensors are not read."""
    try:
        checkpoint = load_checkpoint(run_dir, mmap=True)
        return checkpoint["options"]["config"]["name"] if checkpoint else None
    except (RuntimeError, EOFError, KeyError, TypeError):
        return None


def same_config(saved: dict, config: GCPConfig) -> bool:
    """Whether a config saved as a dict is `config` (fields added later take defaults)."""
    try:
        return GCPConfig.from_dict(saved) == config
    except (TypeError, ValueError):
        return False


def stage_checkpoint(run_dir: Path, stage: str, config: GCPConfig, missing: str,
                     map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint of the `stage` run in `run_dir`: what a later stage, a warm start or
    an export reads. FileNotFoundError(`missing`) when the folder holds no run of that
    stage; ValueError when that run was made for another model config than `config`."""
    checkpoint = load_checkpoint(run_dir, map_location)
    if checkpoint is None or checkpoint["options"].get("stage") != stage:
        raise FileNotFoundError(missing)
    saved = checkpoint["options"]["config"]
    if not same_config(saved, config):
        raise ValueError(f"the {stage} run in {run_dir} is for config {saved['name']!r}, not {config.name!r}")
    return checkpoint
