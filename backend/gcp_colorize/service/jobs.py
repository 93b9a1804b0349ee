"""Colorize jobs: the bounded queue and the worker thread that runs them one at a time.

The worker never touches the server's ROUTER socket (ZeroMQ sockets belong to one
thread): it sends each reply, already signed, through an inproc PUSH socket; the server
loop forwards it to the job's client.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import zmq

from ..colorizer import Cancelled, UnknownChoice, colorize_pixels
from ..core.protocol import ColorizeRequest, ErrorCode, pack, pack_result
from ..imaging import NonFiniteInput

log = logging.getLogger(__name__)

PROGRESS_STEP = 0.01  # smallest change of the overall fraction worth a progress message


@dataclass
class ColorizeJob:
    id: str
    owner: bytes                    # ROUTER identity of the client socket that submitted it
    request: ColorizeRequest
    received: float = field(default_factory=time.monotonic)
    cancel_code: str | None = None  # why it was cancelled: CANCELLED, ABANDONED or SHUTTING_DOWN
    _cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self, code: str) -> None:
        if self.cancel_code is None:
            self.cancel_code = code
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


class QueueFull(Exception):
    pass


class JobQueue:
    """Jobs waiting for the worker, at most ``capacity`` of them (the running job aside)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.running: ColorizeJob | None = None
        self._waiting: collections.deque[ColorizeJob] = collections.deque()
        self._condition = threading.Condition()

    def put(self, job: ColorizeJob) -> int:
        """Enqueue; returns the number of jobs ahead of it. Raises QueueFull."""
        with self._condition:
            if len(self._waiting) >= self.capacity:
                raise QueueFull
            self._waiting.append(job)
            self._condition.notify()
            return len(self._waiting) - 1 + (self.running is not None)

    def take(self, timeout: float) -> ColorizeJob | None:
        """Next job for the worker (marks it running), or None after ``timeout`` s."""
        with self._condition:
            if not self._waiting:
                self._condition.wait(timeout)
            if not self._waiting:
                return None
            self.running = self._waiting.popleft()
            return self.running

    def done(self, job: ColorizeJob) -> None:
        with self._condition:
            if self.running is job:
                self.running = None

    def remove(self, job_id: str) -> ColorizeJob | None:
        """Take a waiting job out of the queue (it will never run)."""
        with self._condition:
            for job in self._waiting:
                if job.id == job_id:
                    self._waiting.remove(job)
                    return job
        return None

    def find(self, job_id: str) -> ColorizeJob | None:
        with self._condition:
            return next((j for j in self.active() if j.id == job_id), None)

    def active(self) -> list[ColorizeJob]:
        """The running job (if any) and the waiting ones, in order."""
        with self._condition:
            return ([self.running] if self.running else []) + list(self._waiting)

    def drain(self) -> list[ColorizeJob]:
        with self._condition:
            jobs, self._waiting = list(self._waiting), collections.deque()
            return jobs


def error_frames(key: bytes, job: ColorizeJob, code: str, message: str) -> list:
    return [job.owner, *pack(key, "error", job.id, {"code": code, "message": message})]


CANCEL_MESSAGES = {
    ErrorCode.CANCELLED: "cancelled",
    ErrorCode.ABANDONED: "cancelled: the client stopped sending heartbeats",
    ErrorCode.SHUTTING_DOWN: "cancelled: the backend is shutting down",
}


class Worker(threading.Thread):
    """Runs queued jobs through ``colorize_pixels`` and posts the replies to ``outbox``."""

    def __init__(self, queue: JobQueue, colorizer, key: bytes, context: zmq.Context, outbox: str):
        super().__init__(name="colorize-worker", daemon=True)
        self.queue, self.colorizer, self.key = queue, colorizer, key
        self._context, self._outbox = context, outbox
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        out = self._context.socket(zmq.PUSH)
        out.connect(self._outbox)

        def send(frames: list) -> None:
            out.send_multipart(frames, copy=False)

        try:
            while not self._stopping.is_set():
                job = self.queue.take(timeout=0.2)
                if job is None:
                    continue
                try:
                    reply = self._run_job(job, send)
                finally:
                    self.queue.done(job)
                # Only now: a client holding the final reply must find the queue without
                # this job (its next submit or status would otherwise race the worker).
                send(reply)
        finally:
            out.close(linger=5000)

    def _run_job(self, job: ColorizeJob, send: Callable[[list], None]) -> list:
        """Runs the job, sending its progress; returns its final reply (result or error)."""
        started = time.monotonic()
        last = {"stage": None, "fraction": -1.0}

        def progress(stage: str, fraction: float) -> None:
            if stage != last["stage"] or fraction - last["fraction"] >= PROGRESS_STEP or fraction >= 1.0:
                last.update(stage=stage, fraction=fraction)
                send([job.owner, *pack(self.key, "progress", job.id, {"stage": stage, "fraction": fraction})])

        request = job.request
        try:
            if job.cancelled:
                raise Cancelled
            results, timing = colorize_pixels(
                self.colorizer, request.image, request.mask, alternatives=request.alternatives,
                seed=request.seed, class_choice=request.class_choice,
                class_alternatives=request.class_alternatives, walk=request.walk, variation=request.variation,
                progress=progress, should_stop=lambda: job.cancelled)
        except Cancelled:
            code = job.cancel_code or ErrorCode.CANCELLED
            log.info("job %s %s", job.id, CANCEL_MESSAGES[code])
            return error_frames(self.key, job, code, CANCEL_MESSAGES[code])
        except NonFiniteInput as exc:
            return error_frames(self.key, job, ErrorCode.NON_FINITE, str(exc))
        except UnknownChoice as exc:
            return error_frames(self.key, job, exc.code, str(exc))
        except MemoryError:
            log.exception("job %s ran out of memory", job.id)
            return error_frames(self.key, job, ErrorCode.INTERNAL,
                                "the backend ran out of memory; try a smaller image or fewer alternatives")
        except Exception as exc:  # a bug must not take the backend down; the log has the trace
            log.exception("job %s failed", job.id)
            return error_frames(self.key, job, ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
        timing = {"queued": started - job.received, **timing, "total": time.monotonic() - job.received}
        log.info("job %s done: %dx%d, %d result(s), %.2f s", job.id, request.image.width, request.image.height,
                 len(results), timing["total"])
        return [job.owner, *pack_result(self.key, job.id, results, timing)]
