"""The backend process over real sockets: every limit and failure case, after each of
which the backend must still answer; queue, busy, cancel, abandoned jobs, shutdown, lock.

The backend runs as a subprocess with a test-double colorizer (tests/backend_double.py):
everything except the model step is the shipped code."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from gcp_colorize.core import connection
from gcp_colorize.core.protocol import (PROTOCOL_VERSION, ColorizeRequest, ErrorCode, PixelImage, pack, signature,
                                        unpack, unsigned_error)
from backend_double import KNOWN_DIRECTIONS
from service_harness import (backend_env, double_command, launch, rgba_image, running_backend, wait_ready)

MAX_PIXELS = 64 * 64


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    with running_backend(tmp_path_factory.mktemp("service"), "--max-pixels", str(MAX_PIXELS)) as b:
        yield b


class Peer:
    """A raw DEALER socket, to send what a well-behaved client never would."""

    def __init__(self, info: connection.ConnectionInfo):
        self.key = info.key
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(info.endpoint)

    def send(self, frames):
        self.socket.send_multipart(frames, copy=False)

    def request(self, type_, body=None, buffers=(), id_="r1"):
        self.send(pack(self.key, type_, id_, body, buffers))

    def receive(self, timeout=10.0):
        if not self.socket.poll(timeout * 1000):
            return None
        return self.socket.recv_multipart()

    def reply(self, timeout=10.0, skip=("pong",)):
        while (frames := self.receive(timeout)) is not None:
            message = unpack(self.key, frames)
            if message.type not in skip:
                return message
        raise AssertionError("no reply from the backend")

    def close(self):
        self.socket.close()


@pytest.fixture
def peer(backend):
    p = Peer(backend.info)
    yield p
    p.close()
    # After every case the backend still answers a good request.
    with backend.client() as client:
        assert client.backend.weights == "test-double"
        assert client.backend.directions == KNOWN_DIRECTIONS
    assert backend.alive()


def colorize_frames(key, image, id_="job", **options):
    return ColorizeRequest(image, **options).pack(key, id_)


def rewrite_header(key, frames, change):
    header = msgpack.unpackb(frames[1])
    change(header)
    header_bytes = msgpack.packb(header)
    buffers = [bytes(f) for f in frames[2:]]
    return [signature(key, [header_bytes, *buffers]), header_bytes, *buffers]


def expect_error(peer, code):
    message = peer.reply(skip=("pong", "progress"))
    assert message.type == "error", message.header
    assert message.header["code"] == code, message.header
    assert message.header["message"]
    return message


def test_hello_reports_limits_and_device(backend):
    with backend.client() as client:
        info = client.backend
    assert info.protocol == PROTOCOL_VERSION and info.device == "cpu" and info.pid == backend.process.pid
    assert info.max_pixels == MAX_PIXELS and info.max_message_bytes >= MAX_PIXELS * 16
    assert info.queue_size == 4 and info.max_alternatives >= 3


def test_connection_file_is_private(backend):
    assert backend.connection_path.stat().st_mode & 0o777 == 0o600
    assert backend.connection_path.parent.stat().st_mode & 0o777 == 0o700
    assert backend.info.endpoint.startswith("tcp://127.0.0.1:")


def test_bad_signature_is_dropped_with_an_unsigned_notice(backend, peer):
    frames = pack(b"not the key", "shutdown", "evil")
    peer.send(frames)
    notice = unsigned_error(peer.receive())
    assert notice is not None and notice.header["code"] == ErrorCode.BAD_SIGNATURE
    assert "bad signature" in backend.log()


def test_unsigned_garbage_is_dropped(peer):
    peer.send([b"\x00" * 32, b"\xc1\xc1\xc1"])
    assert unsigned_error(peer.receive()).header["code"] == ErrorCode.BAD_SIGNATURE


def test_wrong_protocol_version(peer):
    header = msgpack.packb({"v": PROTOCOL_VERSION + 1, "type": "hello", "id": "h"})
    peer.send([signature(peer.key, [header]), header])
    assert "protocol version" in expect_error(peer, ErrorCode.VERSION_MISMATCH).header["message"]


@pytest.mark.parametrize("frames", [
    [b"only one frame"],
    ["signed", b"\xc1 not msgpack"],
    ["signed", msgpack.packb([1, 2])],
    ["signed", msgpack.packb({"v": PROTOCOL_VERSION, "type": "hello"})],
])
def test_garbage_and_truncated_messages(peer, frames):
    if frames[0] == "signed":
        frames = [signature(peer.key, frames[1:]), *frames[1:]]
    peer.send(frames)
    expect_error(peer, ErrorCode.MALFORMED)


def test_unknown_request_type(peer):
    peer.request("colourise")
    assert "colorize" in expect_error(peer, ErrorCode.UNKNOWN_TYPE).header["message"]


@pytest.mark.parametrize("change, code", [
    (lambda h: h["image"].update(layout="CMYK"), ErrorCode.BAD_LAYOUT),
    (lambda h: h["image"].update(dtype="float64"), ErrorCode.BAD_DTYPE),
    (lambda h: h["image"].update(layout=["RGBA"]), ErrorCode.BAD_LAYOUT),
    (lambda h: h["image"].update(dtype={"u": 8}), ErrorCode.BAD_DTYPE),
    (lambda h: h["image"].update(stride=3), ErrorCode.BAD_IMAGE),
    (lambda h: h["image"].update(height=17), ErrorCode.BAD_IMAGE),       # buffer too short for that
    (lambda h: h["image"].update(width="16"), ErrorCode.BAD_IMAGE),
    (lambda h: h.update(image=None), ErrorCode.MALFORMED),
    (lambda h: h.update(mask={"width": 16, "height": 16, "stride": 16, "layout": "GRAY",
                              "dtype": "uint8"}), ErrorCode.MALFORMED),  # describes a frame not sent
    (lambda h: h.update(alternatives=-3), ErrorCode.BAD_PARAMETER),
    (lambda h: h.update(alternatives=1000), ErrorCode.BAD_PARAMETER),
    (lambda h: h.update(seed="lucky"), ErrorCode.BAD_PARAMETER),
    (lambda h: h.update(walk=["saturation"]), ErrorCode.BAD_PARAMETER),
])
def test_bad_colorize_requests(peer, change, code):
    image, _ = rgba_image(16, 16)
    peer.send(rewrite_header(peer.key, colorize_frames(peer.key, image), change))
    expect_error(peer, code)


def test_truncated_pixel_frame(peer):
    image, _ = rgba_image(16, 16)
    frames = colorize_frames(peer.key, image)
    cut = bytes(frames[2])[:-100]
    peer.send([signature(peer.key, [frames[1], cut]), frames[1], cut])
    assert "bytes" in expect_error(peer, ErrorCode.BAD_IMAGE).header["message"]


def test_mask_of_the_wrong_size(peer):
    image, _ = rgba_image(16, 16)
    mask = PixelImage(bytes(15 * 16), 15, 16, "GRAY", "uint8")
    frames = rewrite_header(peer.key, colorize_frames(peer.key, image),
                            lambda h: h.update(mask=mask.descriptor()))
    frames = [*frames[:2], *frames[2:], bytes(mask.data)]
    frames[0] = signature(peer.key, frames[1:])
    peer.send(frames)
    expect_error(peer, ErrorCode.BAD_MASK)


def test_too_many_pixels(peer):
    image, _ = rgba_image(65, 64)
    peer.send(colorize_frames(peer.key, image))
    assert str(MAX_PIXELS) in expect_error(peer, ErrorCode.TOO_LARGE).header["message"]


@pytest.mark.parametrize("dtype, bad", [("float32", math.nan), ("float16", math.inf), ("float32", -math.inf)])
def test_non_finite_float_pixels(peer, dtype, bad):
    pixels = np.full((8, 8, 4), 0.5, dtype)
    pixels[3, 4, 1] = bad
    peer.send(colorize_frames(peer.key, PixelImage(pixels.tobytes(), 8, 8, "RGBA", dtype)))
    assert peer.reply().type == "accepted"
    expect_error(peer, ErrorCode.NON_FINITE)


def test_unknown_class_and_direction(peer):
    image, _ = rgba_image(8, 8)
    peer.send(colorize_frames(peer.key, image, "a", class_choice="no such class"))
    peer.send(colorize_frames(peer.key, image, "b", walk=("sideways", 1.0)))
    codes = {}
    while len(codes) < 2:
        message = peer.reply(skip=("pong", "accepted", "progress"))
        codes[message.id] = message.header["code"]
    assert codes == {"a": ErrorCode.UNKNOWN_CLASS, "b": ErrorCode.UNKNOWN_DIRECTION}


def test_message_over_the_socket_limit_is_cut_off(backend, peer):
    with backend.client() as client:
        blob = bytes(client.backend.max_message_bytes + 1024)
    header = msgpack.packb({"v": PROTOCOL_VERSION, "type": "colorize", "id": "huge"})
    peer.send([signature(peer.key, [header, blob]), header, blob])
    assert peer.receive(timeout=1.0) is None  # ZeroMQ dropped the peer before buffering it all


def test_cancel_of_an_unknown_job(peer):
    peer.request("cancel", {"job": "nope"})
    expect_error(peer, ErrorCode.UNKNOWN_JOB)


def test_good_request_round_trip_keeps_size_layout_dtype_and_alpha(backend):
    image, array = rgba_image(40, 24)
    with backend.client() as client:
        result = client.submit(image, alternatives=2, seed=11).wait()
    assert [r.label for r in result.images] == ["colorized", "alternative 1", "alternative 2"]
    for r in result.images:
        assert r.image.descriptor() == {"width": 40, "height": 24, "stride": 160, "layout": "RGBA", "dtype": "uint8"}
        out = np.frombuffer(r.image.data, np.uint8).reshape(24, 40, 4)
        assert np.array_equal(out[..., 3], array[..., 3])
        assert np.abs(out[..., 0].astype(int) - out[..., 2]).max() > 5  # it has colour
    assert set(result.timing) >= {"queued", "decode", "colorize", "encode", "total"}


def test_status(backend):
    with backend.client() as client:
        status = client.status()
    assert status["running"] is None and status["queued"] == [] and status["queue_size"] == 4


def test_several_clients_at_once(backend):
    outcomes = []

    def work(seed):
        image, _ = rgba_image(20 + seed, 10)
        with backend.client() as client:
            outcomes.append(client.submit(image, alternatives=1, seed=seed).wait(timeout=60).main.image.width)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [20, 21, 22, 23]


# -- queue, cancel, abandon: a slow double ------------------------------------------------------

def test_busy_queue_and_cancel_of_queued_and_running_jobs(tmp_path):
    with running_backend(tmp_path, "--stage-seconds", "1.0", "--queue-size", "1") as backend:
        client = backend.client()
        image, _ = rgba_image(8, 8)
        running = client.submit(image, alternatives=0)
        running_events = running.events(timeout=10)
        assert next(running_events).position == 0
        assert next(running_events).kind == "progress"  # the worker has it now
        queued = client.submit(image, alternatives=0)
        accepted = next(queued.events(timeout=10))
        assert accepted.kind == "accepted" and accepted.position == 1
        refused = next(client.submit(image, alternatives=0).events(timeout=10))
        assert refused.kind == "error" and refused.code == ErrorCode.BUSY
        assert client.status()["queued"] == [queued.id]

        queued.cancel()
        last = list(queued.events(timeout=10))[-1]
        assert last.kind == "error" and last.code == ErrorCode.CANCELLED

        started = time.monotonic()
        running.cancel()
        last = list(running.events(timeout=10))[-1]
        assert last.kind == "error" and last.code == ErrorCode.CANCELLED
        assert time.monotonic() - started < 1.0  # stopped mid-stage, not after the job
        status = client.status()
        assert status["running"] is None and status["queued"] == []

        # the queue has room again
        assert client.submit(image, alternatives=0).wait(timeout=30).main.image.width == 8
        client.close()


def test_abandoned_job_is_cancelled(tmp_path):
    with running_backend(tmp_path, "--stage-seconds", "3", "--client-timeout", "1") as backend:
        peer = Peer(backend.info)  # submits, then never sends a heartbeat
        image, _ = rgba_image(8, 8)
        peer.send(colorize_frames(peer.key, image, "lonely"))
        assert peer.reply().type == "accepted"
        started = time.monotonic()
        message = peer.reply(timeout=10, skip=("pong", "progress"))
        assert message.header["code"] == ErrorCode.ABANDONED
        assert time.monotonic() - started < 3  # before the job would have finished
        assert "no heartbeat" in backend.log()
        with backend.client() as client:
            assert client.status()["running"] is None
        peer.close()


def test_a_reading_client_is_not_abandoned(tmp_path):
    with running_backend(tmp_path, "--stage-seconds", "1", "--client-timeout", "1.5",
                         "--heartbeat", "0.3") as backend:
        with backend.client() as client:
            image, _ = rgba_image(8, 8)
            assert client.submit(image, alternatives=0).wait(timeout=30).main.image.height == 8


def test_shutdown_ends_jobs_and_removes_the_connection_file(tmp_path):
    with running_backend(tmp_path, "--stage-seconds", "2") as backend:
        client = backend.client()
        image, _ = rgba_image(8, 8)
        job = client.submit(image)
        assert next(job.events(timeout=10)).kind == "accepted"
        client.shutdown()
        last = list(job.events(timeout=10))[-1]
        assert last.kind == "error" and last.code == ErrorCode.SHUTTING_DOWN
        assert backend.process.wait(10) == 0
        assert not backend.connection_path.exists()
        client.close()


def test_sigterm_removes_the_connection_file(tmp_path):
    with running_backend(tmp_path) as backend:
        backend.process.send_signal(signal.SIGTERM)
        assert backend.process.wait(10) == 0
        assert not backend.connection_path.exists()


def test_stale_file_is_replaced_and_a_second_backend_refuses(tmp_path):
    env = backend_env(tmp_path)
    path = tmp_path / "run" / "backend.json"
    path.parent.mkdir(mode=0o700)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    connection.write(connection.ConnectionInfo("tcp://127.0.0.1:9", b"k" * 32, dead.pid, PROTOCOL_VERSION,
                                               "0", 0.0), path)
    first = launch(double_command(path), path, tmp_path / "first.log", env)
    try:
        wait_ready(first, path, tmp_path / "first.log")
        assert "stale" in (tmp_path / "first.log").read_text()
        second = launch(double_command(path), path, tmp_path / "second.log", env)
        assert second.wait(60) == connection.EXIT_ALREADY_RUNNING
        assert "already running" in (tmp_path / "second.log").read_text()
        assert connection.read(path).pid == first.pid  # untouched
    finally:
        first.terminate()
        first.wait(10)


def test_ipc_endpoint(tmp_path):
    with running_backend(tmp_path, "--endpoint", "ipc") as backend:
        assert backend.info.endpoint.startswith("ipc://")
        with backend.client() as client:
            image, _ = rgba_image(8, 8)
            assert client.submit(image, alternatives=0).wait(timeout=30).main.image.width == 8
