"""Client library for the colorization backend, shared by the CLI and both plugins.

Typical use (any thread; nothing here touches a GUI)::

    client = Client.connect_or_start(["gcp-colorize", "serve"])   # or Client.connect()
    job = client.submit(PixelImage(data, width, height, "BGRA", "uint8"), alternatives=3)
    for event in job.events(timeout=600):          # Accepted, Progress..., then Result or Error
        ...
    # or: result = job.wait(on_progress=lambda stage, fraction: ...)
    # job.cancel() may be called from any other thread (e.g. a Cancel button).

Each job has its own socket, so jobs of one client can be read from different threads. A
job's reader sends heartbeats while it waits; a job nobody reads is cancelled by the
backend after ``BackendInfo.client_timeout_s``.

Standard library, pyzmq and msgpack only (copied into Krita's and GIMP's Python).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Iterator, Sequence, Union

import zmq

from . import connection
from .protocol import (PROTOCOL_VERSION, ColorizeRequest, ErrorCode, Message, PixelImage,
                       ProtocolError, ResultImage, pack, unpack, unpack_result, unsigned_error)

__all__ = ["Client", "Job", "BackendInfo", "PixelImage", "ResultImage", "Accepted", "Progress",
           "Result", "Error", "Event", "ErrorCode", "ClientError", "BackendNotRunning",
           "BackendStartError", "VersionMismatch", "BadKey", "RequestRejected", "JobFailed",
           "JobCancelled"]

POLL_SLICE_S = 0.1  # how often a waiting reader looks at its cancel flag and the clock


# -- errors ------------------------------------------------------------------------------

class ClientError(Exception):
    """Base of every client failure; ``code`` is an ErrorCode value or a client-side code."""

    code = "client_error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BackendNotRunning(ClientError):
    code = "not_running"


class BackendStartError(ClientError):
    code = "cannot_start"


class VersionMismatch(ClientError):
    code = ErrorCode.VERSION_MISMATCH


class BadKey(ClientError):
    code = ErrorCode.BAD_SIGNATURE


class RequestRejected(ClientError):
    """``submit`` refused the request before sending it (invalid image, over a backend limit)."""


class JobFailed(ClientError):
    """Raised by ``Job.wait`` for an ``Error`` event; ``code`` is the event's code."""


class JobCancelled(JobFailed):
    code = ErrorCode.CANCELLED


# -- backend description and job events --------------------------------------------------------

@dataclass(frozen=True)
class BackendInfo:
    """The backend's answer to ``hello``."""

    endpoint: str
    pid: int
    protocol: int
    backend_version: str
    device: str             # "cpu", "cuda:0", ...
    weights: str            # weights name the backend loaded
    native_resolution: int  # the model's square working size
    max_pixels: int         # width * height limit per request
    max_message_bytes: int  # largest frame the backend's socket accepts
    max_alternatives: int
    queue_size: int
    heartbeat_s: float      # how often a waiting job reader pings
    client_timeout_s: float  # silence after which the backend cancels a job as abandoned
    directions: tuple[str, ...] = ()  # latent walk directions of the loaded weights


@dataclass(frozen=True)
class Accepted:
    kind: ClassVar[str] = "accepted"
    job_id: str
    position: int  # jobs ahead of this one (0 = runs now)


@dataclass(frozen=True)
class Progress:
    kind: ClassVar[str] = "progress"
    job_id: str
    stage: str       # e.g. "queued", "classify", "model", "upsample", "encode"
    fraction: float  # overall progress of the job in [0, 1]


@dataclass(frozen=True)
class Result:
    kind: ClassVar[str] = "result"
    job_id: str
    images: list[ResultImage]  # main result first, then the alternatives
    timing: dict[str, float]   # seconds per step, and "total"

    @property
    def main(self) -> ResultImage:
        return self.images[0]

    @property
    def alternatives(self) -> list[ResultImage]:
        return self.images[1:]


@dataclass(frozen=True)
class Error:
    kind: ClassVar[str] = "error"
    job_id: str
    code: str     # an ErrorCode value
    message: str  # for people


Event = Union[Accepted, Progress, Result, Error]


def _new_id() -> str:
    return uuid.uuid4().hex


def _event_from(job_id: str, message: Message) -> Event | None:
    """The job event a backend message stands for, or None for bookkeeping replies."""
    h = message.header
    if message.type == "accepted":
        return Accepted(job_id, int(h.get("position", 0)))
    if message.type == "progress":
        return Progress(job_id, str(h.get("stage", "")), float(h.get("fraction", 0.0)))
    if message.type == "result":
        images, timing = unpack_result(message)
        return Result(job_id, images, timing)
    if message.type == "error":
        return Error(job_id, str(h.get("code", ErrorCode.INTERNAL)), str(h.get("message", "")))
    return None


# -- client ------------------------------------------------------------------------------

class Client:
    """A connection to one running backend. Thread-safe; see the module docstring."""

    def __init__(self, info: connection.ConnectionInfo, *, timeout: float = 5.0):
        """Say hello to the backend described by ``info``; raises BackendNotRunning,
        VersionMismatch or BadKey."""
        if info.protocol != PROTOCOL_VERSION:
            raise VersionMismatch(f"the backend (version {info.backend_version}, pid {info.pid}) speaks protocol "
                                  f"{info.protocol}, this client speaks {PROTOCOL_VERSION}; install matching "
                                  "versions of the plugin and the backend")
        self.connection = info
        self.timeout = timeout
        self.started_backend = False  # True when connect_or_start started it
        self._context = zmq.Context.instance()
        self._lock = threading.Lock()
        self._socket = self._new_socket()
        try:
            hello = self._request("hello", {}, timeout)
        except BaseException:
            self.close()
            raise
        limits = hello.get("limits", {})
        self.backend = BackendInfo(
            endpoint=info.endpoint, pid=info.pid, protocol=hello["v"],
            backend_version=str(hello.get("backend_version", "")), device=str(hello.get("device", "")),
            weights=str(hello.get("weights", "")), native_resolution=int(hello.get("native_resolution", 0)),
            max_pixels=int(limits.get("max_pixels", 0)), max_message_bytes=int(limits.get("max_message_bytes", 0)),
            max_alternatives=int(limits.get("max_alternatives", 0)), queue_size=int(limits.get("queue_size", 0)),
            heartbeat_s=float(hello.get("heartbeat_s", 2.0)),
            client_timeout_s=float(hello.get("client_timeout_s", 30.0)),
            directions=tuple(str(name) for name in hello.get("directions", [])))

    # construction helpers

    @classmethod
    def connect(cls, path: str | os.PathLike | None = None, *, timeout: float = 5.0) -> "Client":
        """Connect to the backend named by the connection file (default location if None)."""
        path = Path(path) if path else connection.default_path()
        try:
            info = connection.read(path)
        except connection.ConnectionFileError as exc:
            raise BackendNotRunning(f"no backend is running ({exc}); start one with `gcp-colorize serve`") from None
        if not connection.pid_alive(info.pid):
            raise BackendNotRunning(f"no backend is running: the connection file {path} names pid {info.pid}, "
                                    "which has exited (stale file)")
        return cls(info, timeout=timeout)

    @classmethod
    def connect_or_start(cls, command: Sequence[str], *, path: str | os.PathLike | None = None,
                         timeout: float = 5.0, start_timeout: float = 180.0,
                         log_path: str | os.PathLike | None = None, env: dict | None = None) -> "Client":
        """Connect to the running backend, or run ``command`` (e.g. ``["gcp-colorize",
        "serve"]``) detached and wait up to ``start_timeout`` s until it answers.
        Its output goes to ``log_path`` (default ``backend.log`` next to the connection
        file). Raises BackendStartError with the log's tail when it fails."""
        path = Path(path) if path else connection.default_path()
        try:
            return cls.connect(path, timeout=timeout)
        except BackendNotRunning:
            pass
        log_path = Path(log_path) if log_path else path.with_name("backend.log")
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log_fd,
                                       stderr=subprocess.STDOUT, start_new_session=True, env=env)
        except OSError as exc:
            raise BackendStartError(f"cannot start the backend with {' '.join(command)!r}: {exc}") from None
        finally:
            os.close(log_fd)
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            try:
                client = cls.connect(path, timeout=timeout)
            except BackendNotRunning:
                pass
            else:
                client.started_backend = client.backend.pid == process.pid
                return client
            code = process.poll()
            # Exit code EXIT_ALREADY_RUNNING: another start won the race; wait for its file.
            if code is not None and code != connection.EXIT_ALREADY_RUNNING:
                raise BackendStartError(f"the backend exited with code {code} while starting; "
                                        f"its log ({log_path}) ends with:\n{_tail(log_path)}")
            time.sleep(0.2)
        process.terminate()  # half-started: do not leave it holding the lock
        raise BackendStartError(f"the backend did not become ready within {start_timeout:g} s and was stopped; "
                                f"its log ({log_path}) ends with:\n{_tail(log_path)}")

    # requests

    def submit(self, image: PixelImage, mask: PixelImage | None = None, alternatives: int = 3,
               seed: int | None = None, class_choice: int | str = "auto", class_alternatives: bool = True,
               walk: tuple[str, float] | None = None, variation: float = 1.0) -> "Job":
        """Send a colorize request; returns at once. Raises RequestRejected when the request
        is invalid or over the backend's limits (nothing is sent then). ``image.data`` must
        stay unchanged until the job's first event."""
        try:
            request = ColorizeRequest(image, mask, alternatives, seed, class_choice, class_alternatives, walk,
                                      variation)
        except ProtocolError as exc:
            raise RequestRejected(exc.message, exc.code) from None
        limits = self.backend
        if image.pixels > limits.max_pixels:
            raise RequestRejected(f"the image has {image.pixels} pixels ({image.width}x{image.height}); the backend "
                                  f"accepts at most {limits.max_pixels}", ErrorCode.TOO_LARGE)
        if alternatives > limits.max_alternatives:
            raise RequestRejected(f"{alternatives} alternatives requested; the backend allows at most "
                                  f"{limits.max_alternatives}", ErrorCode.BAD_PARAMETER)
        largest = max(image.data.nbytes, mask.data.nbytes if mask is not None else 0)
        if largest > limits.max_message_bytes:
            raise RequestRejected(f"a {largest}-byte pixel frame is over the backend's message limit of "
                                  f"{limits.max_message_bytes} bytes", ErrorCode.MESSAGE_TOO_LARGE)
        job = Job(self, _new_id(), self._new_socket())
        job._send_frames(request.pack(self.connection.key, job.id))
        return job

    def status(self) -> dict:
        """The backend's queue: {"running": job id or None, "queued": [ids], ...}."""
        reply = self._request("status", {}, self.timeout)
        return {k: v for k, v in reply.items() if k not in ("v", "type", "id")}

    def cancel_job(self, job_id: str) -> None:
        """Cancel a queued or running job by id, also one submitted through another
        connection (the GIMP plug-in's guard cancels for a plug-in its host killed).
        Raises ClientError with code "unknown_job" when the job is neither."""
        self._request("cancel", {"job": job_id}, self.timeout)

    def shutdown(self) -> None:
        """Ask the backend to stop (queued and running jobs end with ``shutting_down``)."""
        self._request("shutdown", {}, self.timeout)

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close(linger=0)
                self._socket = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # internals

    def _new_socket(self) -> zmq.Socket:
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        # A fixed identity survives a reconnect, so the backend's replies still find us
        # (identities starting with a zero byte are reserved by ZeroMQ).
        sock.setsockopt(zmq.ROUTING_ID, b"c" + uuid.uuid4().bytes)
        sock.connect(self.connection.endpoint)
        return sock

    def _request(self, type_: str, body: dict, timeout: float) -> dict:
        """One request on the control socket; returns the reply header."""
        request_id = _new_id()
        with self._lock:
            if self._socket is None:
                raise ClientError("the client is closed")
            self._socket.send_multipart(pack(self.connection.key, type_, request_id, body))
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                if not self._socket.poll(left * 1000):
                    break
                frames = self._socket.recv_multipart(copy=False)
                message = _verify(self.connection.key, frames)
                if message.id != request_id:
                    continue  # a late reply to an earlier request that timed out
                if message.type == "error":
                    code, text = message.header.get("code"), str(message.header.get("message", ""))
                    raise (VersionMismatch(text) if code == ErrorCode.VERSION_MISMATCH else ClientError(text, code))
                return message.header
        raise BackendNotRunning(f"the backend at {self.connection.endpoint} (pid {self.connection.pid}) did not "
                                f"answer '{type_}' within {timeout:g} s")


def _verify(key: bytes, frames: list) -> Message:
    """Unpack a reply, turning key and version failures into their client errors."""
    try:
        return unpack(key, frames)
    except ProtocolError as exc:
        if exc.code == ErrorCode.BAD_SIGNATURE:
            notice = unsigned_error(frames)
            raise BadKey("the backend rejected this client's key: the connection file is not the running "
                         "backend's" + (f" ({notice.header.get('message')})" if notice else "")) from None
        if exc.code == ErrorCode.VERSION_MISMATCH:
            raise VersionMismatch(exc.message) from None
        raise ClientError(f"the backend sent a malformed reply: {exc.message}", exc.code) from None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- job -----------------------------------------------------------------------------------

class Job:
    """One submitted colorize request. Read it with ``events`` or ``wait`` from one thread
    at a time; ``cancel`` from any thread."""

    def __init__(self, client: Client, job_id: str, socket: zmq.Socket):
        self.id = job_id
        self._client = client
        self._key = client.connection.key
        self._socket: zmq.Socket | None = socket
        self._io_lock = threading.Lock()        # owns the socket; held only around socket calls
        self._cancel_requested = threading.Event()
        self._cancel_sent_at: float | None = None
        self._last_ping = time.monotonic()
        self._last_heard = time.monotonic()
        self.finished: Event | None = None       # the final Result or Error once seen

    @property
    def done(self) -> bool:
        return self.finished is not None

    def cancel(self) -> None:
        """Ask the backend to cancel this job (queued or running). Thread-safe and
        non-blocking; the job's stream then ends with Error(code="cancelled")."""
        self._cancel_requested.set()
        if self._io_lock.acquire(blocking=False):  # nobody is reading: send it ourselves
            try:
                self._send_cancel_if_requested()
            finally:
                self._io_lock.release()

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Yield Accepted, Progress... and finally one Result or Error (also for a timeout
        after ``timeout`` s, a backend that stops answering, or a failed key check).
        Transport failures never raise here: they end the stream with an Error."""
        deadline = None if timeout is None else time.monotonic() + timeout
        heartbeat = self._client.backend.heartbeat_s
        silence_limit = max(3.0, 5 * heartbeat)  # five missed pongs
        while self.finished is None:
            with self._io_lock:
                event = self._step(deadline, heartbeat, silence_limit)
            if event is not None:
                if isinstance(event, (Result, Error)):
                    self._finish(event)
                yield event

    def wait(self, on_progress: Callable[[str, float], None] | None = None,
             timeout: float | None = None) -> Result:
        """Block until the result; ``on_progress(stage, fraction)`` for each progress
        event. Raises JobCancelled or JobFailed (``code`` tells why)."""
        for event in self.events(timeout):
            if isinstance(event, Progress) and on_progress is not None:
                on_progress(event.stage, event.fraction)
            elif isinstance(event, Result):
                return event
            elif isinstance(event, Error):
                raise (JobCancelled if event.code == ErrorCode.CANCELLED else JobFailed)(event.message, event.code)
        if isinstance(self.finished, Result):  # it had finished before this call
            return self.finished
        raise JobFailed(self.finished.message, self.finished.code)

    def close(self) -> None:
        """Stop reading; cancels the job if it has not finished."""
        if self.finished is None:
            self.cancel()
        with self._io_lock:
            self._close_socket()

    def __enter__(self) -> "Job":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # internals (called with _io_lock held)

    def _step(self, deadline: float | None, heartbeat: float, silence_limit: float) -> Event | None:
        """Poll once (at most POLL_SLICE_S); returns the next event, or None."""
        if self._socket is None:
            return Error(self.id, ErrorCode.CANCELLED, "the job was closed")
        self._send_cancel_if_requested()
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            self._cancel_requested.set()
            self._send_cancel_if_requested()
            return Error(self.id, ErrorCode.TIMEOUT, "the job did not finish in time and was cancelled")
        if now - self._last_heard > silence_limit:
            if self._cancel_sent_at is not None:
                return Error(self.id, ErrorCode.CANCELLED, "cancelled (the backend did not confirm)")
            return Error(self.id, ErrorCode.BACKEND_LOST,
                         f"the backend stopped answering for {silence_limit:g} s (did it exit or crash?)")
        if now - self._last_ping >= heartbeat:
            self._send_frames(pack(self._key, "ping", _new_id(), {"job": self.id}))
            self._last_ping = now
        wait = POLL_SLICE_S if deadline is None else max(0.0, min(POLL_SLICE_S, deadline - now))
        if not self._socket.poll(wait * 1000):
            return None
        frames = self._socket.recv_multipart(copy=False)
        try:
            message = _verify(self._key, frames)
        except ClientError as exc:
            return Error(self.id, exc.code, exc.message)
        self._last_heard = time.monotonic()
        if message.type in ("pong", "cancel"):
            return None
        if message.id != self.id:
            return None
        try:
            return _event_from(self.id, message)
        except ProtocolError as exc:
            return Error(self.id, exc.code, f"the backend sent a malformed {message.type}: {exc.message}")

    def _send_frames(self, frames: list) -> None:
        self._socket.send_multipart(frames, copy=False)

    def _send_cancel_if_requested(self) -> None:
        if (self._cancel_requested.is_set() and self._cancel_sent_at is None
                and self._socket is not None and self.finished is None):
            self._send_frames(pack(self._key, "cancel", _new_id(), {"job": self.id}))
            self._cancel_sent_at = time.monotonic()
            self._last_heard = time.monotonic()  # give the backend the full silence limit to confirm

    def _finish(self, event: Event) -> None:
        self.finished = event
        with self._io_lock:
            self._close_socket()

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=1000)  # lets a last cancel still go out
            self._socket = None
