"""The training loop shared by every stage: budget, exact resume, checkpoints, progress.

A stage (see `Stage`) owns its networks, optimisers and losses; this loop owns the run:
it restores the checkpoint of the run directory when there is one (networks, optimisers,
EMA, RNG states, batch order, step, time spent), runs steps until the budget is spent
(a total number of steps and/or total training hours, counted over all sessions),
checkpoints every few minutes and when stopped by SIGINT/SIGTERM (after the current
step), writes sample pictures and keeps a log. Running the same command again continues
the run; a larger budget extends it. The steps may run under a bf16 autocast (`--bf16`);
like the thread count, that is a speed choice, not part of the run's options, so a run
can switch either way when it resumes.
"""

from __future__ import annotations

import fcntl
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from ..model.config import GCPConfig
from .batches import BatchOrder, collate
from .progress import Progress, format_duration
from .run_state import capture_rng, load_checkpoint, restore_rng, same_config, save_checkpoint


class Stage(Protocol):
    name: str
    batch_size: int
    device: torch.device  # where its networks are (the autocast's device type)
    dataset: object  # map-style: len(), [index] -> dict of tensors, optional set_epoch()

    def options(self) -> dict:
        """Plain values that define the run; a resumed run must have the same (a stage may
        also name `options_added_later`, see `options_match`)."""

    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        """One optimisation step on a collated batch; returns the losses."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def write_samples(self, path: Path) -> None:
        """A PNG a person can look at to judge progress."""


@dataclass(frozen=True)
class Budget:
    steps: int | None = None
    hours: float | None = None

    def __post_init__(self):
        if self.steps is None and self.hours is None:
            raise ValueError("give a budget: a number of steps and/or hours")
        if self.steps is not None and self.steps < 0 or self.hours is not None and self.hours < 0:
            raise ValueError("the budget must not be negative")

    def fraction(self, step: int, seconds: float) -> float:
        parts = []
        if self.steps is not None:
            parts.append(step / self.steps if self.steps else 1.0)
        if self.hours is not None:
            parts.append(seconds / (self.hours * 3600) if self.hours else 1.0)
        return max(parts)

    def seconds_left(self, step: int, seconds: float) -> float | None:
        fraction = self.fraction(step, seconds)
        if fraction <= 0:
            return None
        return seconds * (1 - fraction) / fraction


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps (restored on exit)."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second signal: stop now, the last checkpoint stays
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def options_match(saved: dict, current: dict, added_later: dict | None = None) -> bool:
    """Run options equal, the model config compared as a config (see `same_config`).

    `added_later` maps options introduced after some runs were started to the value those
    runs used: such an option may be missing from `saved` if `current` has that value. A
    dict value (e.g. the loss weights) maps its own entries the same way."""
    added_later = added_later or {}
    if saved.keys() - current.keys():
        return False
    for key, value in current.items():
        if key not in saved:
            if key not in added_later or added_later[key] != value:
                return False
        elif key == "config":
            if not same_config(saved[key], GCPConfig.from_dict(value)):
                return False
        elif isinstance(added_later.get(key), dict) and isinstance(saved[key], dict):
            if not options_match(saved[key], value, added_later[key]):
                return False
        elif saved[key] != value:
            return False
    return True


def load_items(dataset, items: list[tuple[int, int]]) -> list[dict]:
    """Samples for (epoch, index) pairs; a dataset with `set_epoch` gets each one's epoch."""
    samples = []
    for epoch, index in items:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        samples.append(dataset[index])
    return samples


class RunLock:
    """An exclusive lock on a run directory: two processes training one run would
    overwrite each other's checkpoints. Released when the process ends, however it ends."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "lock"
        self._file = None

    def __enter__(self):
        self._file = open(self.path, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            owner = self._file.read().strip() or "?"
            self._file.close()
            raise RuntimeError(f"{self.path.parent} is being trained by another process "
                               f"(pid {owner}); stop it first") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


def train(stage: Stage, run_dir: Path, budget: Budget, *, seed: int,
          checkpoint_every_s: float = 600.0, samples_every_s: float = 1800.0,
          log_every: int = 50, bf16: bool = False) -> int:
    """Run `stage` in `run_dir` until `budget` is spent or a stop is requested.

    The caller seeds the generators with `seed` before building the stage, so a new run is
    deterministic; a resumed run restores them from the checkpoint. With `bf16`, each
    training step (forward and backward; the optimisers keep fp32 weights) runs under a
    bfloat16 autocast on the device of the stage. Returns the step reached.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir):
        return _train(stage, run_dir, budget, seed, checkpoint_every_s, samples_every_s,
                      log_every, bf16)


def _train(stage: Stage, run_dir: Path, budget: Budget, seed: int, checkpoint_every_s: float,
           samples_every_s: float, log_every: int, bf16: bool) -> int:
    progress = Progress(stage.name, run_dir / "train.log", log_every=log_every)
    order = BatchOrder(len(stage.dataset), stage.batch_size, seed)
    step, seconds = 0, 0.0
    checkpoint = load_checkpoint(run_dir)
    if checkpoint is not None:
        if not options_match(checkpoint["options"], stage.options(),
                             getattr(stage, "options_added_later", None)):
            raise ValueError(
                f"{run_dir} holds a {checkpoint['options'].get('stage', '?')} run made with "
                f"options {checkpoint['options']}, which differ from this run's "
                f"{stage.options()}: resume with the same options or use a new --run-dir")
        stage.load_state_dict(checkpoint["stage"])
        order.load_state_dict(checkpoint["batch_order"])
        restore_rng(checkpoint["rng"])
        step, seconds = checkpoint["step"], checkpoint["seconds"]
        progress.message(f"resumed at step {step} after {format_duration(seconds)} of training")
    else:
        progress.message(f"new run in {run_dir}, options {stage.options()}")
    progress.message(f"budget: steps {budget.steps}, hours {budget.hours}"
                     + (", steps in bf16 autocast" if bf16 else ""))

    def save() -> None:
        save_checkpoint(run_dir, {"options": stage.options(), "stage": stage.state_dict(),
                                  "batch_order": order.state_dict(), "rng": capture_rng(),
                                  "step": step, "seconds": seconds})

    autocast_type = torch.device(stage.device).type
    last_save = last_samples = time.monotonic()
    with StopRequest() as stop:
        while budget.fraction(step, seconds) < 1 and not stop.requested:
            started = time.monotonic()
            batch = collate(load_items(stage.dataset, order.next_batch()))
            with torch.autocast(autocast_type, dtype=torch.bfloat16, enabled=bf16):
                losses = stage.train_step(batch, step)
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                raise FloatingPointError(
                    f"{stage.name}: loss {', '.join(bad)} is not finite at step {step}; the "
                    f"last checkpoint in {run_dir} is kept (lower the learning rate?)")
            step += 1
            now = time.monotonic()
            seconds += now - started
            progress.update(step, stage.batch_size, losses, budget.fraction(step, seconds),
                            budget.seconds_left(step, seconds))
            if now - last_samples >= samples_every_s:
                stage.write_samples(run_dir / "samples" / f"step{step:07d}.png")
                last_samples = now
            if now - last_save >= checkpoint_every_s:
                save()
                last_save = time.monotonic()
        save()
    stage.write_samples(run_dir / "samples" / f"step{step:07d}.png")
    why = "stop requested" if stop.requested else "budget spent"
    progress.message(f"{why}: checkpoint at step {step} after {format_duration(seconds)} "
                     f"of training in {run_dir}")
    return step
