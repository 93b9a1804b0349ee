"""The plugin's connection to the backend and its one running job.

Every call that may block (connecting, starting the backend, submitting, reading job
events) runs on a QThread; results come back to the UI thread through queued signals, so
Krita stays responsive and Cancel works while a job runs. Krita objects are touched only
on the UI thread (reading the layer before the job, inserting the results after it).
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

from krita import Krita
from PyQt5.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from . import layer_io, settings_store
from .core.client import (Accepted, BackendNotRunning, Client, ClientError, Error, ErrorCode, Progress,
                          Result)
from .core.hostcore import DEFAULT_MAX_PIXELS, HostError, backend_command, backend_environment

PLUGIN_DIR = Path(__file__).resolve().parent
START_TIMEOUT_S = 300.0  # loading the official weights on a slow CPU takes a while
# Failures after which the backend we knew is gone or replaced: reconnect next time.
_CONNECTION_LOST = {ErrorCode.BACKEND_LOST, ErrorCode.BAD_SIGNATURE, ErrorCode.VERSION_MISMATCH,
                    ErrorCode.SHUTTING_DOWN}


class _Call(QThread):
    """Runs one blocking function off the UI thread; ``done(result, error)`` on the UI thread."""

    done = pyqtSignal(object, object)

    def __init__(self, function, parent=None):
        super().__init__(parent)
        self._function = function

    def run(self):
        try:
            result = self._function()
        except Exception as exc:  # handed to the UI thread, which reports it
            self.done.emit(None, exc)
        else:
            self.done.emit(result, None)


class _JobThread(QThread):
    """Submits one request and forwards its events (Accepted, Progress, Result/Error)."""

    job_event = pyqtSignal(object)  # not "event": that would hide QObject.event()

    def __init__(self, client: Client, source: layer_io.SourceArea, options: dict, parent=None):
        super().__init__(parent)
        self._client, self._source, self._options = client, source, options
        self._job = None
        self._cancelled = False

    def run(self):
        try:
            self._job = self._client.submit(self._source.image, self._source.mask, **self._options)
        except ClientError as exc:
            self.job_event.emit(Error("", exc.code, exc.message))
            return
        if self._cancelled:
            self._job.cancel()
        for event in self._job.events():
            self.job_event.emit(event)

    def cancel(self):
        """Thread-safe: the job's stream then ends with a "cancelled" error."""
        self._cancelled = True
        if self._job is not None:
            self._job.cancel()


class Session(QObject):
    """Backend state, the running job and its progress; shared by the action and the docker.

    ``changed`` fires whenever any public attribute changed."""

    changed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.settings = settings_store.load()
        self.client: Client | None = None
        self.backend_state = "disconnected"   # disconnected, starting, ready, error
        self.directions: tuple[str, ...] = ()  # the backend's latent walk directions
        self.backend_text = "Not connected; the backend starts when you colorize."
        self.busy = False                     # a job is being prepared, running or inserted
        self.progress = 0.0
        self.stage = ""
        self.message = ""
        self.message_is_error = False
        self.last_run: dict = {}              # timings of the last finished job
        self._connect_call: _Call | None = None
        self._job_thread: _JobThread | None = None
        self._pending = None                  # a request waiting for the backend to start
        self._job_context = None              # (source, options, output mode, trigger time) of the job

    # -- backend ---------------------------------------------------------------------------

    def connect_backend(self, start: bool = True) -> None:
        """Connect to the running backend; with ``start`` also start it when none runs."""
        if self.client is not None or self._connect_call is not None:
            return
        self._set_backend("starting", "Starting the backend..." if start else "Looking for the backend...")
        self._connect_call = _Call(lambda: _connect(start), self)
        self._connect_call.done.connect(self._connected)
        self._connect_call.start()

    @pyqtSlot(object, object)
    def _connected(self, client, error) -> None:
        self._connect_call = None
        pending, self._pending = self._pending, None
        if error is not None:
            if isinstance(error, BackendNotRunning) and pending is None:
                self._set_backend("disconnected", "Not running; it starts when you colorize.")
            else:
                reason = getattr(error, "message", None) or str(error)
                self._set_backend("error", f"Backend error: {reason}")
                if pending is not None:
                    self._finish_job(f"Not colorized: {reason}", error=True)
            return
        self.client = client
        info = client.backend
        self.directions = info.directions
        self._set_backend("ready", f"Ready: {info.device}, weights {info.weights}")
        if pending is not None:
            self._start_job(*pending)

    def _set_backend(self, state: str, text: str) -> None:
        self.backend_state, self.backend_text = state, text
        self.changed.emit()

    def shutdown_started_backend(self) -> None:
        """On Krita's exit: cancel the job, and stop the backend if this plugin started it."""
        if self._job_thread is not None:
            self._job_thread.cancel()
            self._job_thread.wait(3000)
        client, self.client = self.client, None
        if client is not None:
            try:
                if client.started_backend:
                    client.shutdown()
            except ClientError:
                pass  # already gone
            finally:
                client.close()

    # -- jobs --------------------------------------------------------------------------------

    def colorize(self, document) -> None:
        """Colorize the active layer of ``document`` with the current settings."""
        triggered = time.monotonic()
        if self.busy:
            self._say("A colorization is already running; wait for it or cancel it.", error=True)
            return
        try:
            options = self.settings.request_options()
            limit = DEFAULT_MAX_PIXELS if self.client is None else min(DEFAULT_MAX_PIXELS,
                                                                      self.client.backend.max_pixels)
            source = layer_io.read_active_layer(document, limit)
        except HostError as exc:
            self._say(str(exc), error=True)
            return
        self.busy, self.progress, self.stage = True, 0.0, "starting"
        request = (source, options, self.settings.output_mode, triggered)
        if self.client is None:
            self._pending = request
            self._say(f"Colorizing {source.area.width} x {source.area.height} pixels once the backend is ready...")
            self.connect_backend(start=True)
        else:
            self._start_job(*request)

    def cancel(self) -> None:
        if self._job_thread is not None:
            self.stage = "cancelling"
            self._job_thread.cancel()
            self.changed.emit()
        elif self._pending is not None:
            self._pending = None
            self._finish_job("Cancelled.", error=False)

    def _start_job(self, source, options, output_mode, triggered) -> None:
        self._say(f"Colorizing {source.area.width} x {source.area.height} pixels...")
        thread = _JobThread(self.client, source, options, self)
        # A bound slot of this UI-thread object: the events are queued to the UI thread (a
        # lambda would run on the job thread, where Krita's API must not be used).
        thread.job_event.connect(self._on_event)
        thread.finished.connect(thread.deleteLater)
        self._job_thread, self._job_context = thread, (source, options, output_mode, triggered)
        thread.start()

    @pyqtSlot(object)
    def _on_event(self, event) -> None:
        source, options, output_mode, triggered = self._job_context
        if isinstance(event, Accepted):
            self.stage = f"queued ({event.position} ahead)" if event.position else "accepted"
            self.changed.emit()
        elif isinstance(event, Progress):
            self.progress, self.stage = event.fraction, event.stage
            self.changed.emit()
        elif isinstance(event, Result):
            self._insert(event, source, options, output_mode, triggered)
        elif isinstance(event, Error):
            self._job_thread = None
            if event.code in _CONNECTION_LOST:
                self._drop_client(event.message)
            if event.code == ErrorCode.CANCELLED:
                self._finish_job("Cancelled.", error=False)
            else:
                self._finish_job(f"Not colorized: {event.message}", error=True)

    def _insert(self, result: Result, source, options, output_mode, triggered) -> None:
        self._job_thread = None
        received = time.monotonic()
        try:
            group = layer_io.insert_results(source, result.images, options, output_mode)
        except HostError as exc:
            self._finish_job(str(exc), error=True)
            return
        except Exception as exc:  # a bug: report it in the panel instead of leaving the job hanging
            traceback.print_exc()
            self._finish_job(f"Internal error while inserting the result: {exc!r}", error=True)
            return
        inserted = time.monotonic()
        info = self.client.backend if self.client is not None else None
        self.last_run = {"width": source.area.width, "height": source.area.height,
                         "layers": len(result.images), "trigger_to_inserted_s": inserted - triggered,
                         "insert_s": inserted - received, "backend_timing": dict(result.timing),
                         "device": info.device if info else "", "weights": info.weights if info else "",
                         "group": group.name()}
        self._finish_job(f"Added \"{group.name()}\" with {len(result.images)} layer(s) in "
                         f"{inserted - triggered:.1f} s.", error=False, completed=True)

    def _drop_client(self, reason: str) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()
        self._set_backend("error", f"Backend lost: {reason} (colorize again to reconnect)")

    def _finish_job(self, text: str, error: bool, completed: bool = False) -> None:
        self.busy, self.stage = False, ""
        self.progress = 1.0 if completed else 0.0
        self._say(text, error)

    def _say(self, text: str, error: bool = False) -> None:
        self.message, self.message_is_error = text, error
        self.changed.emit()
        view = Krita.instance().activeWindow() and Krita.instance().activeWindow().activeView()
        if error and view is not None:
            view.showFloatingMessage(text, Krita.instance().icon("dialog-warning"), 6000, 1)


def _connect(start: bool) -> Client:
    """Connect to the backend; when ``start``, start it with the command recorded at
    install time. Runs off the UI thread."""
    if not start:
        return Client.connect()
    try:
        command = backend_command(PLUGIN_DIR)
    except HostError as no_command:
        try:
            return Client.connect()
        except BackendNotRunning:
            raise ClientError(str(no_command), "not_running") from None
    # Krita puts its own Python folders (with this plugin, also named gcp_colorize) on
    # PYTHONPATH; the backend's interpreter must not see them.
    return Client.connect_or_start(command, start_timeout=START_TIMEOUT_S, env=backend_environment(os.environ))


_session: Session | None = None


def instance() -> Session:
    """The one session of this Krita process (created on first use, on the UI thread)."""
    global _session
    if _session is None:
        _session = Session(Krita.instance())
    return _session
