"""The wire format shared by the backend, the client and the plugins (the one place it is defined).

A message is a list of ZeroMQ frames ``[signature, header, *buffers]``:

- ``signature``: HMAC-SHA256 with the per-start key over every following frame, each
  preceded by its length as 8 bytes big-endian (so frame boundaries are signed too).
- ``header``: a msgpack map with ``v`` (protocol version), ``type``, ``id`` and the body.
- ``buffers``: raw pixel frames, described by descriptors in the header and sent as they
  are (never pickled, never copied into the header).

Requests (client -> backend): hello, colorize, cancel, status, shutdown, ping.
Replies (backend -> client): hello, accepted, progress, result, error, status, cancel,
shutdown, pong; every reply carries the ``id`` of the request it answers.

This module depends on the standard library and msgpack only: it is copied into Krita's
and GIMP's Python with the rest of ``core/``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import msgpack

PROTOCOL_VERSION = 1

# Channels per pixel for each layout; the order of the channels is the layout's name.
LAYOUTS = {"RGBA": 4, "BGRA": 4, "RGB": 3, "GRAY": 1, "GRAYA": 2}
# Bytes per channel; all multi-byte samples are little-endian.
DTYPES = {"uint8": 1, "uint16": 2, "float16": 2, "float32": 4}

REQUEST_TYPES = ("hello", "colorize", "cancel", "status", "shutdown", "ping")
MAX_HEADER_BYTES = 1 << 20
MAX_VARIATION = 4.0  # beyond ~3 the alternatives turn into casts over the whole picture


class ErrorCode:
    """Stable error codes (the ``code`` of an ``error`` reply); messages are for people."""

    BAD_SIGNATURE = "bad_signature"          # wrong key (the reply is the only unsigned one)
    VERSION_MISMATCH = "version_mismatch"    # client and backend speak different versions
    MALFORMED = "malformed"                  # garbage or truncated frames, bad header fields
    UNKNOWN_TYPE = "unknown_type"            # a request type this backend does not know
    BAD_LAYOUT = "bad_layout"                # pixel layout not in LAYOUTS
    BAD_DTYPE = "bad_dtype"                  # sample type not in DTYPES
    BAD_IMAGE = "bad_image"                  # width/height/stride do not fit the buffer
    BAD_MASK = "bad_mask"                    # selection mask not GRAY or not the image's size
    TOO_LARGE = "too_large"                  # more pixels than the backend's max_pixels
    MESSAGE_TOO_LARGE = "message_too_large"  # a frame over max_message_bytes (checked by the client)
    NON_FINITE = "non_finite"                # NaN or infinity in float pixels
    BAD_PARAMETER = "bad_parameter"          # alternatives, seed, class or walk of the wrong type/range
    UNKNOWN_CLASS = "unknown_class"          # class name or index the classifier does not know
    UNKNOWN_DIRECTION = "unknown_direction"  # latent walk direction not available
    BUSY = "busy"                            # the job queue is full; try again later
    CANCELLED = "cancelled"                  # cancelled by a cancel request
    ABANDONED = "abandoned"                  # the client stopped sending heartbeats
    UNKNOWN_JOB = "unknown_job"              # cancel for a job that is not queued or running
    SHUTTING_DOWN = "shutting_down"          # the backend is stopping
    INTERNAL = "internal"                    # a bug or resource failure in the backend
    # Raised by the client itself, never sent by the backend:
    TIMEOUT = "timeout"                      # the job did not finish within the caller's timeout
    BACKEND_LOST = "backend_lost"            # the backend stopped answering


class ProtocolError(Exception):
    """A message or request that breaks the protocol; ``code`` is an ErrorCode value."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _as_bytes_view(data: Any) -> memoryview:
    """A flat byte view of any C-contiguous buffer (bytes, bytearray, memoryview, zmq frame)."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    if not view.c_contiguous:
        raise ProtocolError(ErrorCode.BAD_IMAGE, "pixel buffer must be contiguous")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


@dataclass(frozen=True)
class PixelImage:
    """Pixels as they travel: ``height`` rows of ``stride`` bytes, each row ``width`` pixels
    of ``LAYOUTS[layout]`` channels of ``dtype`` (little-endian). The last row may omit
    its padding. ``data`` is any buffer (bytes, bytearray, memoryview); it is not copied."""

    data: Any
    width: int
    height: int
    layout: str = "RGBA"
    dtype: str = "uint8"
    stride: int | None = None  # bytes per row; None = width * bytes_per_pixel (no padding)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _as_bytes_view(self.data))
        if not isinstance(self.layout, str) or self.layout not in LAYOUTS:
            raise ProtocolError(ErrorCode.BAD_LAYOUT,
                                f"unknown pixel layout {self.layout!r}; expected one of {', '.join(LAYOUTS)}")
        if not isinstance(self.dtype, str) or self.dtype not in DTYPES:
            raise ProtocolError(ErrorCode.BAD_DTYPE,
                                f"unknown sample type {self.dtype!r}; expected one of {', '.join(DTYPES)}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ProtocolError(ErrorCode.BAD_IMAGE, f"image {name} must be a positive integer, got {value!r}")
        row_bytes = self.width * self.bytes_per_pixel
        if self.stride is None:
            object.__setattr__(self, "stride", row_bytes)
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or self.stride < row_bytes:
            raise ProtocolError(ErrorCode.BAD_IMAGE,
                                f"stride {self.stride!r} is smaller than a row ({self.width} px x "
                                f"{self.bytes_per_pixel} bytes = {row_bytes} bytes)")
        if self.stride % DTYPES[self.dtype]:
            raise ProtocolError(ErrorCode.BAD_IMAGE,
                                f"stride {self.stride} is not a multiple of the {self.dtype} sample size")
        smallest = self.stride * (self.height - 1) + row_bytes
        largest = self.stride * self.height
        if not smallest <= self.data.nbytes <= largest:
            raise ProtocolError(ErrorCode.BAD_IMAGE,
                                f"pixel buffer has {self.data.nbytes} bytes; a {self.width}x{self.height} "
                                f"{self.layout} {self.dtype} image with stride {self.stride} needs "
                                f"{smallest}" + (f" to {largest}" if largest != smallest else "") + " bytes")

    @property
    def channels(self) -> int:
        return LAYOUTS[self.layout]

    @property
    def bytes_per_pixel(self) -> int:
        return LAYOUTS[self.layout] * DTYPES[self.dtype]

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def descriptor(self) -> dict:
        """The header entry that describes this image's buffer frame."""
        return {"width": self.width, "height": self.height, "stride": self.stride,
                "layout": self.layout, "dtype": self.dtype}

    @classmethod
    def from_descriptor(cls, descriptor: Any, data: Any, what: str = "image") -> "PixelImage":
        if not isinstance(descriptor, dict):
            raise ProtocolError(ErrorCode.MALFORMED, f"{what} descriptor must be a map")
        missing = {"width", "height", "stride", "layout", "dtype"} - descriptor.keys()
        if missing:
            raise ProtocolError(ErrorCode.MALFORMED, f"{what} descriptor lacks {', '.join(sorted(missing))}")
        return cls(data, descriptor["width"], descriptor["height"], descriptor["layout"],
                   descriptor["dtype"], descriptor["stride"])


# -- signing and framing ------------------------------------------------------------------

def signature(key: bytes, frames: Sequence[Any]) -> bytes:
    """HMAC-SHA256 over the length-prefixed frames (header and buffers)."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for frame in frames:
        view = _as_bytes_view(frame)
        mac.update(view.nbytes.to_bytes(8, "big"))
        mac.update(view)
    return mac.digest()


@dataclass
class Message:
    """A decoded, verified message: its header map and its raw buffer frames."""

    header: dict
    buffers: list[memoryview] = field(default_factory=list)

    @property
    def type(self) -> str:
        return self.header["type"]

    @property
    def id(self) -> str:
        return self.header["id"]


def pack(key: bytes, type_: str, id_: str, body: dict | None = None,
         buffers: Sequence[Any] = ()) -> list:
    """Frames ``[signature, header, *buffers]`` of one message, ready for send_multipart."""
    header = {"v": PROTOCOL_VERSION, "type": type_, "id": id_, **(body or {})}
    header_bytes = msgpack.packb(header, use_bin_type=True)
    views = [_as_bytes_view(b) for b in buffers]
    return [signature(key, [header_bytes, *views]), header_bytes, *views]


def pack_unsigned_error(id_: str, code: str, message: str) -> list:
    """The one unsigned reply: telling a peer whose signature failed that its key is wrong
    (it cannot be signed with a key the peer does not have)."""
    header = {"v": PROTOCOL_VERSION, "type": "error", "id": id_, "code": code, "message": message}
    return [b"", msgpack.packb(header, use_bin_type=True)]


def _parse_header(raw: Any) -> dict:
    view = _as_bytes_view(raw)
    if view.nbytes > MAX_HEADER_BYTES:
        raise ProtocolError(ErrorCode.MALFORMED, f"header of {view.nbytes} bytes is too large")
    try:
        header = msgpack.unpackb(view, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise ProtocolError(ErrorCode.MALFORMED, f"header is not valid msgpack ({exc})") from None
    if not isinstance(header, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "header must be a msgpack map")
    return header


def unpack(key: bytes, frames: Sequence[Any]) -> Message:
    """Verify and decode ``[signature, header, *buffers]``; raises ProtocolError.

    The signature is checked before anything is parsed, so nothing from a peer without the
    key is ever interpreted."""
    if len(frames) < 2:
        raise ProtocolError(ErrorCode.MALFORMED, f"message has {len(frames)} frame(s); needs signature and header")
    views = [_as_bytes_view(f) for f in frames]
    if not hmac.compare_digest(bytes(views[0]), signature(key, views[1:])):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE,
                            "message signature does not match: wrong key (is the connection file current?)")
    header = _parse_header(views[1])
    version = header.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(ErrorCode.VERSION_MISMATCH,
                            f"peer speaks protocol version {version!r}, this side speaks {PROTOCOL_VERSION}; "
                            "update the plugin and the backend to the same release")
    if not isinstance(header.get("type"), str) or not isinstance(header.get("id"), str):
        raise ProtocolError(ErrorCode.MALFORMED, "header needs string fields 'type' and 'id'")
    return Message(header, views[2:])


def unsigned_error(frames: Sequence[Any]) -> Message | None:
    """The bad-key notice from ``pack_unsigned_error`` if ``frames`` is one, else None.
    Only ever used to explain a failure; never to act on a request."""
    if len(frames) != 2 or _as_bytes_view(frames[0]).nbytes != 0:
        return None
    try:
        header = _parse_header(frames[1])
    except ProtocolError:
        return None
    if header.get("type") == "error" and header.get("code") == ErrorCode.BAD_SIGNATURE:
        return Message(header)
    return None


# -- colorize request and result ------------------------------------------------------------

@dataclass(frozen=True)
class ColorizeRequest:
    """What a colorize request asks for.

    class_choice: "auto" (the classifier decides), an ImageNet index 0..999 or a class name.
    class_alternatives: alternatives use other likely classes that colour differently; false:
        latent noise from the seed, scaled by the variation.
    walk: (direction name, amount) moves every result's latent code along that direction.
    variation: how far the noise alternatives move from the main result: the scale of their latent
        noise, 0 .. MAX_VARIATION (1 = the paper's N(0, I); 0 = no move).
    """

    image: PixelImage
    mask: PixelImage | None = None  # GRAY, same size as image; 0 keeps, 1 colorizes, between blends
    alternatives: int = 3
    seed: int | None = None
    class_choice: int | str = "auto"
    class_alternatives: bool = True
    walk: tuple[str, float] | None = None
    variation: float = 1.0

    def __post_init__(self) -> None:
        if self.mask is not None:
            if self.mask.layout != "GRAY":
                raise ProtocolError(ErrorCode.BAD_MASK, f"selection mask must be GRAY, got {self.mask.layout}")
            if (self.mask.width, self.mask.height) != (self.image.width, self.image.height):
                raise ProtocolError(ErrorCode.BAD_MASK,
                                    f"selection mask is {self.mask.width}x{self.mask.height}, "
                                    f"image is {self.image.width}x{self.image.height}")
        if isinstance(self.alternatives, bool) or not isinstance(self.alternatives, int) or self.alternatives < 0:
            raise ProtocolError(ErrorCode.BAD_PARAMETER,
                                f"alternatives must be an integer >= 0, got {self.alternatives!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed < 2**63):
            raise ProtocolError(ErrorCode.BAD_PARAMETER, f"seed must be an integer in [0, 2**63), got {self.seed!r}")
        choice = self.class_choice
        if isinstance(choice, bool) or not isinstance(choice, (int, str)) or choice == "":
            raise ProtocolError(ErrorCode.BAD_PARAMETER,
                                f"class must be 'auto', an ImageNet index or a class name, got {choice!r}")
        if not isinstance(self.class_alternatives, bool):
            raise ProtocolError(ErrorCode.BAD_PARAMETER, "class_alternatives must be true or false")
        if self.walk is not None:
            walk = tuple(self.walk) if isinstance(self.walk, (list, tuple)) else None
            if (walk is None or len(walk) != 2 or not isinstance(walk[0], str) or not walk[0]
                    or isinstance(walk[1], bool) or not isinstance(walk[1], (int, float))
                    or not math.isfinite(walk[1])):
                raise ProtocolError(ErrorCode.BAD_PARAMETER,
                                    f"walk must be (direction name, finite amount), got {self.walk!r}")
            object.__setattr__(self, "walk", (walk[0], float(walk[1])))
        if (isinstance(self.variation, bool) or not isinstance(self.variation, (int, float))
                or not 0 <= self.variation <= MAX_VARIATION):
            raise ProtocolError(ErrorCode.BAD_PARAMETER,
                                f"variation must be a number in [0, {MAX_VARIATION:g}], got {self.variation!r}")
        object.__setattr__(self, "variation", float(self.variation))

    def pack(self, key: bytes, id_: str) -> list:
        buffers = [self.image.data] + ([self.mask.data] if self.mask is not None else [])
        body = {"image": self.image.descriptor(),
                "mask": self.mask.descriptor() if self.mask is not None else None,
                "alternatives": self.alternatives, "seed": self.seed,
                "class_choice": self.class_choice, "class_alternatives": self.class_alternatives,
                "walk": list(self.walk) if self.walk is not None else None, "variation": self.variation}
        return pack(key, "colorize", id_, body, buffers)

    @classmethod
    def from_message(cls, message: Message) -> "ColorizeRequest":
        header, buffers = message.header, message.buffers
        has_mask = header.get("mask") is not None
        if len(buffers) != 1 + has_mask:
            raise ProtocolError(ErrorCode.MALFORMED,
                                f"colorize request has {len(buffers)} pixel frame(s), its header "
                                f"describes {1 + has_mask}")
        image = PixelImage.from_descriptor(header.get("image"), buffers[0])
        mask = PixelImage.from_descriptor(header["mask"], buffers[1], "mask") if has_mask else None
        return cls(image, mask, header.get("alternatives", 3), header.get("seed"),
                   header.get("class_choice", "auto"), header.get("class_alternatives", True),
                   header.get("walk"), header.get("variation", 1.0))


@dataclass(frozen=True)
class ResultImage:
    """One colorized image (main result or an alternative) and what produced it."""

    image: PixelImage      # same width, height, layout and dtype as the request's image
    label: str             # "colorized", "alternative 1", ...
    seed: int
    class_index: int
    class_name: str

    def entry(self) -> dict:
        return {"image": self.image.descriptor(), "label": self.label, "seed": self.seed,
                "class_index": self.class_index, "class_name": self.class_name}


def pack_result(key: bytes, id_: str, images: Sequence[ResultImage], timing: dict[str, float]) -> list:
    """A ``result`` reply: one entry and one buffer frame per image, main result first."""
    body = {"results": [r.entry() for r in images], "timing": timing}
    return pack(key, "result", id_, body, [r.image.data for r in images])


def unpack_result(message: Message) -> tuple[list[ResultImage], dict[str, float]]:
    entries = message.header.get("results")
    if not isinstance(entries, list) or len(entries) != len(message.buffers):
        raise ProtocolError(ErrorCode.MALFORMED, "result header does not describe its pixel frames")
    images = []
    for entry, buffer in zip(entries, message.buffers):
        if not isinstance(entry, dict):
            raise ProtocolError(ErrorCode.MALFORMED, "result entry must be a map")
        images.append(ResultImage(PixelImage.from_descriptor(entry.get("image"), buffer, "result"),
                                  entry.get("label", ""), entry.get("seed", 0),
                                  entry.get("class_index", -1), entry.get("class_name", "")))
    return images, dict(message.header.get("timing") or {})
