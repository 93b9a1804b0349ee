"""The backend process: one ZeroMQ ROUTER loop that verifies, parses and answers every
request, hands colorize jobs to the worker (service/jobs.py) and forwards its replies.

Lifecycle (``run_backend``): take the lock next to the connection file (fails if another
backend is alive), load the colorizer, bind (loopback, free port by default), write the
connection file with a fresh random key, serve until ``shutdown``/SIGTERM/SIGINT, then
end every job with ``shutting_down`` and remove the connection file.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import zmq

from .. import __version__
from ..core import connection
from ..core.protocol import (PROTOCOL_VERSION, REQUEST_TYPES, ColorizeRequest, ErrorCode, Message,
                             ProtocolError, pack, pack_unsigned_error, unpack)
from .jobs import CANCEL_MESSAGES, ColorizeJob, JobQueue, QueueFull, Worker, error_frames

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:*"
DEFAULT_QUEUE_SIZE = 4
DEFAULT_MAX_ALTERNATIVES = 8
DEFAULT_HEARTBEAT_S = 2.0
DEFAULT_CLIENT_TIMEOUT_S = 30.0
# Working memory per input pixel of a job (float copies of the image, Lab planes, results):
# the default pixel limit keeps one job within the machine's memory.
BYTES_PER_PIXEL_BUDGET = 400
MAX_PIXELS_CAP = 8192 * 8192
LOOP_TICK_S = 0.2
SHUTDOWN_GRACE_S = 30.0


def default_max_pixels() -> int:
    """Sized for this machine: physical memory / per-pixel budget, capped at 8192^2."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 << 30
    return int(min(MAX_PIXELS_CAP, memory // BYTES_PER_PIXEL_BUDGET))


def max_message_bytes(max_pixels: int) -> int:
    """Largest frame the socket accepts: the biggest legal image (4 float32 channels) plus
    room for row padding; anything larger is cut off by ZeroMQ before it is buffered."""
    return max_pixels * 16 + (1 << 20)


def resolve_endpoint(endpoint: str, runtime_dir: Path) -> str:
    """``tcp`` / ``ipc`` shorthands -> a loopback TCP port chosen by the OS / a socket file
    in the private runtime dir; anything else is used as given."""
    if endpoint == "tcp":
        return DEFAULT_ENDPOINT
    if endpoint == "ipc":
        return f"ipc://{runtime_dir / 'backend.sock'}"
    return endpoint


def is_loopback(endpoint: str) -> bool:
    parts = urlsplit(endpoint)
    if parts.scheme in ("ipc", "inproc"):
        return True
    host = (parts.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Server:
    """The request loop. ``colorizer`` is anything with the Colorizer contract
    (``info`` and ``colorize``); it runs on the worker thread."""

    def __init__(self, colorizer, *, endpoint: str = DEFAULT_ENDPOINT, connection_path: Path | None = None,
                 max_pixels: int | None = None, queue_size: int = DEFAULT_QUEUE_SIZE,
                 max_alternatives: int = DEFAULT_MAX_ALTERNATIVES, heartbeat_s: float = DEFAULT_HEARTBEAT_S,
                 client_timeout_s: float = DEFAULT_CLIENT_TIMEOUT_S):
        self.colorizer = colorizer
        self.connection_path = Path(connection_path) if connection_path else connection.default_path()
        self.endpoint = resolve_endpoint(endpoint, self.connection_path.parent)
        self.max_pixels = max_pixels or default_max_pixels()
        self.max_alternatives = max_alternatives
        self.heartbeat_s = heartbeat_s
        self.client_timeout_s = client_timeout_s
        self.key = secrets.token_bytes(32)
        self.queue = JobQueue(queue_size)
        self._last_seen: dict[bytes, float] = {}
        self._stopping = threading.Event()
        self._started = time.time()
        self._jobs_done = 0

    def stop(self) -> None:
        """Ask the loop to end (safe from signal handlers and other threads)."""
        self._stopping.set()

    def serve_forever(self, on_ready: Callable[[connection.ConnectionInfo], None] = lambda info: None) -> None:
        context = zmq.Context.instance()
        router = context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 1000)
        router.setsockopt(zmq.MAXMSGSIZE, max_message_bytes(self.max_pixels))
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a client that reconnects keeps its identity
        outbox = context.socket(zmq.PULL)
        outbox_address = f"inproc://gcp-colorize-outbox-{id(self)}"
        outbox.bind(outbox_address)
        worker = Worker(self.queue, self.colorizer, self.key, context, outbox_address)
        try:
            router.bind(self.endpoint)
            endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
            if not is_loopback(endpoint):
                log.warning("listening on %s, which is not loopback: other machines can reach this port "
                            "(they still need the key)", endpoint)
            worker.start()
            info = connection.ConnectionInfo(endpoint, self.key, os.getpid(), PROTOCOL_VERSION,
                                             __version__, time.time())
            connection.write(info, self.connection_path)
            log.info("ready: %s, connection file %s, device %s, weights %s", endpoint, self.connection_path,
                     self.colorizer.info.get("device"), self.colorizer.info.get("weights"))
            on_ready(info)
            self._loop(router, outbox)
        finally:
            self._shut_down(router, outbox, worker)

    # the loop

    def _loop(self, router: zmq.Socket, outbox: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(outbox, zmq.POLLIN)
        while not self._stopping.is_set():
            ready = dict(poller.poll(LOOP_TICK_S * 1000))
            if outbox in ready:
                while outbox.poll(0):
                    router.send_multipart(outbox.recv_multipart(copy=False), copy=False)
            if router in ready:
                while router.poll(0) and not self._stopping.is_set():
                    frames = router.recv_multipart(copy=False)
                    for reply in self._handle(frames[0].bytes, frames[1:]):
                        router.send_multipart(reply, copy=False)
            self._cancel_abandoned(router)

    def _handle(self, identity: bytes, frames: list) -> list[list]:
        """Replies (each [identity, *frames]) to one incoming message."""
        try:
            message = unpack(self.key, frames)
        except ProtocolError as exc:
            if exc.code == ErrorCode.BAD_SIGNATURE:
                log.warning("dropped a message with a bad signature from peer %s", identity.hex())
                return [[identity, *pack_unsigned_error("", exc.code, exc.message)]]
            log.warning("rejected a message from peer %s: %s", identity.hex(), exc.message)
            return [self._error(identity, "", exc.code, exc.message)]
        self._last_seen[identity] = time.monotonic()
        handler = {"hello": self._hello, "colorize": self._colorize, "cancel": self._cancel,
                   "status": self._status, "shutdown": self._shutdown, "ping": self._ping}.get(message.type)
        if handler is None:
            return [self._error(identity, message.id, ErrorCode.UNKNOWN_TYPE,
                                f"unknown request type {message.type!r}; known: {', '.join(REQUEST_TYPES)}")]
        try:
            return handler(identity, message)
        except ProtocolError as exc:
            return [self._error(identity, message.id, exc.code, exc.message)]
        except Exception as exc:  # a bug must not stop the loop; the log has the trace
            log.exception("%s request %s failed", message.type, message.id)
            return [self._error(identity, message.id, ErrorCode.INTERNAL,
                                f"internal error: {type(exc).__name__}: {exc}")]

    def _reply(self, identity: bytes, type_: str, id_: str, body: dict | None = None) -> list:
        return [identity, *pack(self.key, type_, id_, body)]

    def _error(self, identity: bytes, id_: str, code: str, message: str) -> list:
        return self._reply(identity, "error", id_, {"code": code, "message": message})

    # requests

    def _hello(self, identity: bytes, message: Message) -> list[list]:
        info = self.colorizer.info
        body = {"backend_version": __version__, "device": str(info.get("device", "")),
                "weights": str(info.get("weights", "")), "config": str(info.get("config", "")),
                "native_resolution": int(info.get("native_resolution", 0)),
                "directions": [str(name) for name in info.get("directions", [])],
                "limits": {"max_pixels": self.max_pixels, "max_message_bytes": max_message_bytes(self.max_pixels),
                           "max_alternatives": self.max_alternatives, "queue_size": self.queue.capacity},
                "heartbeat_s": self.heartbeat_s, "client_timeout_s": self.client_timeout_s}
        return [self._reply(identity, "hello", message.id, body)]

    def _colorize(self, identity: bytes, message: Message) -> list[list]:
        request = ColorizeRequest.from_message(message)
        image = request.image
        if image.pixels > self.max_pixels:
            raise ProtocolError(ErrorCode.TOO_LARGE, f"the image has {image.pixels} pixels ({image.width}x"
                                f"{image.height}); this backend accepts at most {self.max_pixels}")
        if request.alternatives > self.max_alternatives:
            raise ProtocolError(ErrorCode.BAD_PARAMETER, f"{request.alternatives} alternatives requested; "
                                f"at most {self.max_alternatives}")
        if self.queue.find(message.id) is not None:
            raise ProtocolError(ErrorCode.BAD_PARAMETER, f"a job with id {message.id} is already queued")
        job = ColorizeJob(message.id, identity, request)
        try:
            position = self.queue.put(job)
        except QueueFull:
            raise ProtocolError(ErrorCode.BUSY, f"the backend is busy ({self.queue.capacity} jobs waiting); "
                                "try again when one has finished") from None
        log.info("job %s queued: %dx%d %s %s, %d alternative(s), position %d", job.id, image.width, image.height,
                 image.layout, image.dtype, request.alternatives, position)
        return [self._reply(identity, "accepted", job.id, {"position": position})]

    def _cancel(self, identity: bytes, message: Message) -> list[list]:
        job_id = message.header.get("job")
        queued = self.queue.remove(job_id) if isinstance(job_id, str) else None
        if queued is not None:
            queued.cancel(ErrorCode.CANCELLED)
            replies = [error_frames(self.key, queued, ErrorCode.CANCELLED, CANCEL_MESSAGES[ErrorCode.CANCELLED])]
        elif (running := self.queue.running) is not None and running.id == job_id:
            running.cancel(ErrorCode.CANCELLED)  # the worker answers when it stops
            replies = []
        else:
            return [self._error(identity, message.id, ErrorCode.UNKNOWN_JOB,
                                f"no queued or running job {job_id!r} (finished already?)")]
        log.info("job %s cancel requested", job_id)
        return [self._reply(identity, "cancel", message.id, {"job": job_id}), *replies]

    def _status(self, identity: bytes, message: Message) -> list[list]:
        running = self.queue.running
        body = {"running": running.id if running else None,
                "queued": [j.id for j in self.queue.active() if j is not running],
                "queue_size": self.queue.capacity, "uptime_s": time.time() - self._started}
        return [self._reply(identity, "status", message.id, body)]

    def _shutdown(self, identity: bytes, message: Message) -> list[list]:
        log.info("shutdown requested by peer %s", identity.hex())
        self.stop()
        return [self._reply(identity, "shutdown", message.id)]

    def _ping(self, identity: bytes, message: Message) -> list[list]:
        return [self._reply(identity, "pong", message.id)]

    # housekeeping

    def _cancel_abandoned(self, router: zmq.Socket) -> None:
        now = time.monotonic()
        active = self.queue.active()
        for job in active:
            if job.cancelled or now - self._last_seen.get(job.owner, now) <= self.client_timeout_s:
                continue
            log.warning("job %s: no heartbeat from its client for %.0f s, cancelling", job.id, self.client_timeout_s)
            if self.queue.remove(job.id) is not None:
                router.send_multipart(error_frames(self.key, job, ErrorCode.ABANDONED,
                                                   CANCEL_MESSAGES[ErrorCode.ABANDONED]))
            job.cancel(ErrorCode.ABANDONED)
        owners = {job.owner for job in active}
        for identity in [i for i in self._last_seen if i not in owners]:
            if now - self._last_seen[identity] > self.client_timeout_s:
                del self._last_seen[identity]

    def _shut_down(self, router: zmq.Socket, outbox: zmq.Socket, worker: Worker) -> None:
        for job in self.queue.drain():
            job.cancel(ErrorCode.SHUTTING_DOWN)
            router.send_multipart(error_frames(self.key, job, ErrorCode.SHUTTING_DOWN,
                                               CANCEL_MESSAGES[ErrorCode.SHUTTING_DOWN]))
        if self.queue.running is not None:
            self.queue.running.cancel(ErrorCode.SHUTTING_DOWN)
        worker.stop()
        if worker.is_alive():
            worker.join(SHUTDOWN_GRACE_S)
        while outbox.poll(0):  # the worker's last replies (e.g. the cancelled job's error)
            router.send_multipart(outbox.recv_multipart(copy=False), copy=False)
        connection.remove(self.connection_path, os.getpid())
        outbox.close(linger=0)
        router.close(linger=1000)
        log.info("stopped")


def run_backend(make_colorizer: Callable[[], object], *, connection_path: Path | None = None,
                on_ready: Callable[[connection.ConnectionInfo], None] = lambda info: None, **server_options) -> int:
    """Lock, load, serve until stopped; returns the process exit code
    (``connection.EXIT_ALREADY_RUNNING`` when another backend holds the lock)."""
    connection_path = Path(connection_path) if connection_path else connection.default_path()
    connection_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = connection.BackendLock(connection_path)
    if not lock.acquire():
        log.error("another backend is already running (pid %s, lock %s); stop it with "
                  "`gcp-colorize serve --stop` or use it", lock.holder_pid(), lock.path)
        return connection.EXIT_ALREADY_RUNNING
    try:
        if connection_path.exists():
            log.info("replacing the stale connection file %s (its backend is gone)", connection_path)
            connection_path.unlink()
        server = Server(make_colorizer(), connection_path=connection_path, **server_options)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: server.stop())
        server.serve_forever(on_ready)
        return 0
    finally:
        lock.release()
