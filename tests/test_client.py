"""The client library against real backend processes: finding or starting a backend,
clear errors (not running, cannot start, version mismatch, bad key), request checks,
events, cancel from another thread, timeouts and a backend that dies."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time

import pytest

from gcp_colorize.core import connection
from gcp_colorize.core.client import (BackendNotRunning, BackendStartError, BadKey, Client, JobCancelled, JobFailed,
                                      RequestRejected, VersionMismatch)
from gcp_colorize.core.protocol import PROTOCOL_VERSION, ErrorCode, PixelImage
from service_harness import backend_env, double_command, rgba_image, running_backend


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    with running_backend(tmp_path_factory.mktemp("client"), "--stage-seconds", "0.3", "--heartbeat", "0.3",
                         "--max-pixels", "4096") as b:
        yield b


def test_connect_without_a_backend(tmp_path):
    with pytest.raises(BackendNotRunning, match="gcp-colorize serve"):
        Client.connect(tmp_path / "backend.json")


def test_connect_with_a_stale_file(tmp_path):
    path = tmp_path / "backend.json"
    connection.write(connection.ConnectionInfo("tcp://127.0.0.1:9", b"k" * 32, 2**22 + 12345, PROTOCOL_VERSION,
                                               "0", 0.0), path)
    with pytest.raises(BackendNotRunning, match="stale"):
        Client.connect(path)


def test_nobody_listening_times_out(tmp_path):
    info = connection.ConnectionInfo("tcp://127.0.0.1:9", b"k" * 32, os.getpid(), PROTOCOL_VERSION, "0", 0.0)
    started = time.monotonic()
    with pytest.raises(BackendNotRunning, match="did not answer"):
        Client(info, timeout=0.5)
    assert time.monotonic() - started < 3


def test_wrong_key(backend):
    with pytest.raises(BadKey, match="key"):
        Client(dataclasses.replace(backend.info, key=b"x" * 32))


def test_protocol_version_mismatch(backend):
    with pytest.raises(VersionMismatch, match="protocol"):
        Client(dataclasses.replace(backend.info, protocol=PROTOCOL_VERSION + 1))


def test_hello(backend):
    with backend.client() as client:
        assert client.backend.weights == "test-double" and client.backend.max_pixels == 4096
        assert client.backend.heartbeat_s == 0.3 and not client.started_backend


@pytest.mark.parametrize("call, code", [
    (lambda c, im: c.submit(rgba_image(65, 64)[0]), ErrorCode.TOO_LARGE),
    (lambda c, im: c.submit(im, alternatives=99), ErrorCode.BAD_PARAMETER),
    (lambda c, im: c.submit(im, seed=-5), ErrorCode.BAD_PARAMETER),
    (lambda c, im: c.submit(im, mask=PixelImage(bytes(4), 2, 2, "GRAY")), ErrorCode.BAD_MASK),
])
def test_requests_refused_before_sending(backend, call, code):
    image, _ = rgba_image(8, 8)
    with backend.client() as client:
        with pytest.raises(RequestRejected) as info:
            call(client, image)
        assert info.value.code == code and info.value.message
        assert client.status()["queued"] == [] and client.status()["running"] is None


def test_events_and_wait(backend):
    image, _ = rgba_image(16, 8)
    with backend.client() as client:
        events = list(client.submit(image, alternatives=1, seed=4).events(timeout=30))
        assert [e.kind for e in events[:2]] == ["accepted", "progress"] and events[-1].kind == "result"
        fractions = [e.fraction for e in events if e.kind == "progress"]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        assert {e.stage for e in events if e.kind == "progress"} >= {"decode", "model", "encode"}
        seen = []
        result = client.submit(image, alternatives=2).wait(on_progress=lambda s, f: seen.append(f), timeout=30)
        assert len(result.alternatives) == 2 and result.main.label == "colorized" and seen[-1] == 1.0


def test_error_event_and_job_failed(backend):
    image, _ = rgba_image(8, 8)
    with backend.client() as client:
        with pytest.raises(JobFailed) as info:
            client.submit(image, class_choice="no such class").wait(timeout=30)
        assert info.value.code == ErrorCode.UNKNOWN_CLASS


def test_cancel_from_another_thread(backend):
    image, _ = rgba_image(8, 8)
    with backend.client() as client:
        job = client.submit(image, alternatives=3)
        timer = threading.Timer(0.1, job.cancel)
        timer.start()
        # The job alone takes 0.9 s and would end in a result: JobCancelled is the proof.
        with pytest.raises(JobCancelled):
            job.wait(timeout=30)
        timer.join()


def test_cancel_before_anyone_reads(backend):
    image, _ = rgba_image(8, 8)
    with backend.client() as client:
        job = client.submit(image)
        job.cancel()
        last = list(job.events(timeout=30))[-1]
        assert last.kind == "error" and last.code == ErrorCode.CANCELLED


def test_timeout_cancels_the_job(backend):
    image, _ = rgba_image(8, 8)
    with backend.client() as client:
        last = list(client.submit(image).events(timeout=0.3))[-1]
        assert last.kind == "error" and last.code == ErrorCode.TIMEOUT
        deadline = time.monotonic() + 5
        while client.status()["running"] is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.status()["running"] is None  # the backend got the cancel


def test_backend_that_dies_mid_job(tmp_path):
    with running_backend(tmp_path, "--stage-seconds", "30", "--heartbeat", "0.2") as backend:
        client = backend.client()
        job = client.submit(rgba_image(8, 8)[0])
        events = job.events()
        assert next(events).kind == "accepted"
        os.kill(backend.process.pid, signal.SIGKILL)
        started = time.monotonic()
        last = list(events)[-1]
        assert last.kind == "error" and last.code == ErrorCode.BACKEND_LOST
        assert time.monotonic() - started < 5  # 5 missed heartbeats
        client.close()


def test_connect_or_start_starts_once_and_reuses(tmp_path):
    env = backend_env(tmp_path)
    path = tmp_path / "run" / "backend.json"
    path.parent.mkdir(mode=0o700)
    command = double_command(path)
    client = Client.connect_or_start(command, path=path, env=env, start_timeout=120)
    try:
        assert client.started_backend and connection.pid_alive(client.backend.pid)
        again = Client.connect_or_start(command, path=path, env=env)
        assert not again.started_backend and again.backend.pid == client.backend.pid
        again.close()
        assert "ready" in (path.parent / "backend.log").read_text()
    finally:
        client.shutdown()
        client.close()


def test_connect_or_start_reports_a_failing_backend(tmp_path):
    command = [sys.executable, "-c", "import sys; print('model file missing: /x/y.safetensors'); sys.exit(5)"]
    with pytest.raises(BackendStartError, match=r"code 5(.|\n)*model file missing"):
        Client.connect_or_start(command, path=tmp_path / "backend.json", start_timeout=60)


def test_connect_or_start_with_a_missing_program(tmp_path):
    with pytest.raises(BackendStartError, match="cannot start"):
        Client.connect_or_start([str(tmp_path / "no-such-program")], path=tmp_path / "backend.json")


def test_connect_or_start_gives_up_after_the_start_timeout(tmp_path):
    command = [sys.executable, "-c", "import time; print('loading...', flush=True); time.sleep(30)"]
    started = time.monotonic()
    with pytest.raises(BackendStartError, match=r"within 1 s(.|\n)*loading"):
        Client.connect_or_start(command, path=tmp_path / "backend.json", start_timeout=1)
    assert time.monotonic() - started < 10
