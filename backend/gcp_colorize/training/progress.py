"""Progress bar on the terminal and a log file in the run directory.

On a terminal one line is redrawn (step, bar, images/s, running-mean losses, time left);
elsewhere (nohup, CI) a plain line is printed every `print_every_s` seconds instead. The
log file gets a line with all losses every `log_every` steps and every message.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from pathlib import Path


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(self, name: str, log_path: Path, *, log_every: int = 50,
                 print_every_s: float = 30.0, stream=None):
        self.name = name
        self.log_path = log_path
        self.log_every = log_every
        self.print_every_s = print_every_s
        self.stream = stream or sys.stderr
        self.is_terminal = self.stream.isatty()
        self._times: deque[tuple[float, int]] = deque(maxlen=20)  # (time, images) per step
        self._sums: dict[str, float] = {}
        self._count = 0
        self._last_print = 0.0
        log_path.parent.mkdir(parents=True, exist_ok=True)

    def message(self, text: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {self.name}: {text}"
        if self.is_terminal:
            self.stream.write("\r\033[K")
        print(line, file=self.stream, flush=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def images_per_second(self) -> float:
        if len(self._times) < 2:
            return 0.0
        (t0, _), (t1, _) = self._times[0], self._times[-1]
        images = sum(n for _, n in list(self._times)[1:])
        return images / max(t1 - t0, 1e-9)

    def update(self, step: int, images: int, losses: dict[str, float], fraction_done: float,
               seconds_left: float | None) -> None:
        """After each step: `fraction_done` of the budget, `seconds_left` estimated."""
        now = time.monotonic()
        self._times.append((now, images))
        for key, value in losses.items():
            self._sums[key] = self._sums.get(key, 0.0) + value
        self._count += 1
        means = {k: v / self._count for k, v in self._sums.items()}
        loss_text = " ".join(f"{k} {v:.4g}" for k, v in means.items())
        eta = "" if seconds_left is None else f" left {format_duration(seconds_left)}"
        status = f"step {step} {self.images_per_second():.2f} img/s{eta} {loss_text}"
        if self.is_terminal:
            width = 20
            filled = int(round(width * min(max(fraction_done, 0.0), 1.0)))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r\033[K{self.name} [{bar}] {100 * fraction_done:5.1f}% {status}")
            self.stream.flush()
        elif now - self._last_print >= self.print_every_s:
            print(f"{self.name} {100 * fraction_done:5.1f}% {status}", file=self.stream, flush=True)
            self._last_print = now
        if step % self.log_every == 0:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {self.name}: {status}\n")
            self._sums, self._count = {}, 0
