"""Wire format: signing, framing, pixel descriptors and request validation (no sockets)."""

import msgpack
import numpy as np
import pytest

from gcp_colorize.core.protocol import (PROTOCOL_VERSION, ColorizeRequest, ErrorCode, PixelImage, ProtocolError,
                                        ResultImage, pack, pack_result, pack_unsigned_error, signature, unpack,
                                        unpack_result, unsigned_error)

KEY = b"k" * 32


def image(width=4, height=3, layout="RGBA", dtype="uint8", stride=None, nbytes=None):
    channels = {"RGBA": 4, "BGRA": 4, "RGB": 3, "GRAY": 1, "GRAYA": 2}.get(layout, 4)
    size = {"uint8": 1, "uint16": 2, "float16": 2, "float32": 4}.get(dtype, 8)
    stride = stride or width * channels * size
    nbytes = nbytes if nbytes is not None else max(0, stride * height)
    return PixelImage(bytes(nbytes), width, height, layout, dtype, stride)


def code_of(call) -> str:
    with pytest.raises(ProtocolError) as info:
        call()
    assert info.value.message  # every error explains itself
    return info.value.code


def test_pack_unpack_round_trip_keeps_buffers_without_copy():
    pixels = bytearray(range(48))
    frames = pack(KEY, "colorize", "job-1", {"x": 1}, [pixels])
    message = unpack(KEY, frames)
    assert message.type == "colorize" and message.id == "job-1" and message.header["x"] == 1
    assert message.header["v"] == PROTOCOL_VERSION
    assert bytes(message.buffers[0]) == bytes(pixels)
    pixels[0] = 99  # the frame is a view of the caller's buffer, not a copy
    assert message.buffers[0][0] == 99


@pytest.mark.parametrize("frame", [0, 1, 2])
def test_any_changed_frame_breaks_the_signature(frame):
    frames = [bytes(f) for f in pack(KEY, "colorize", "j", {}, [b"pixels"])]
    frames[frame] = frames[frame][:-1] + bytes([frames[frame][-1] ^ 1])
    assert code_of(lambda: unpack(KEY, frames)) == ErrorCode.BAD_SIGNATURE


def test_frame_boundaries_are_signed():
    header = msgpack.packb({"v": PROTOCOL_VERSION, "type": "ping", "id": "a"})
    frames = [signature(KEY, [header, b"ab", b"cd"]), header, b"ab", b"cd"]
    assert unpack(KEY, frames).buffers[1] == b"cd"
    moved = [frames[0], header, b"abc", b"d"]  # same bytes, different split
    assert code_of(lambda: unpack(KEY, moved)) == ErrorCode.BAD_SIGNATURE


def test_wrong_key_and_unsigned_notice():
    frames = pack(KEY, "hello", "h")
    assert code_of(lambda: unpack(b"other", frames)) == ErrorCode.BAD_SIGNATURE
    notice = pack_unsigned_error("", ErrorCode.BAD_SIGNATURE, "wrong key")
    assert unsigned_error(notice).header["code"] == ErrorCode.BAD_SIGNATURE
    assert unsigned_error(frames) is None  # signed messages are not notices
    assert unsigned_error([b"", b"\xc1garbage"]) is None


def signed(header_bytes: bytes, *buffers: bytes) -> list:
    return [signature(KEY, [header_bytes, *buffers]), header_bytes, *buffers]


@pytest.mark.parametrize("frames, code", [
    ([b"x"], ErrorCode.MALFORMED),                                     # truncated: no header
    ([], ErrorCode.MALFORMED),
    (signed(b"\xc1\xc1 not msgpack"), ErrorCode.MALFORMED),
    (signed(msgpack.packb([1, 2, 3])), ErrorCode.MALFORMED),           # not a map
    (signed(msgpack.packb({"v": PROTOCOL_VERSION, "type": 5, "id": "a"})), ErrorCode.MALFORMED),
    (signed(msgpack.packb({"v": PROTOCOL_VERSION, "type": "hello"})), ErrorCode.MALFORMED),
    (signed(msgpack.packb({"v": PROTOCOL_VERSION + 1, "type": "hello", "id": "a"})), ErrorCode.VERSION_MISMATCH),
    (signed(msgpack.packb({"type": "hello", "id": "a"})), ErrorCode.VERSION_MISMATCH),
])
def test_garbage_truncated_and_foreign_versions_are_rejected(frames, code):
    assert code_of(lambda: unpack(KEY, frames)) == code


def test_pixel_image_accepts_strided_and_unpadded_last_row():
    assert image(5, 3, "RGB", stride=16).stride == 16
    short_last_row = image(5, 3, "RGB", stride=16, nbytes=16 * 2 + 15)
    assert short_last_row.pixels == 15
    array = np.zeros((3, 4, 4), np.float16)
    from_numpy = PixelImage(array.data, 4, 3, "RGBA", "float16")  # any C-contiguous buffer
    assert from_numpy.stride == 32 and from_numpy.data.nbytes == array.nbytes


@pytest.mark.parametrize("make, code", [
    (lambda: image(layout="CMYK"), ErrorCode.BAD_LAYOUT),
    (lambda: image(dtype="float64"), ErrorCode.BAD_DTYPE),
    (lambda: image(width=0), ErrorCode.BAD_IMAGE),
    (lambda: image(height=-2), ErrorCode.BAD_IMAGE),
    (lambda: PixelImage(b"1234", 1.0, 1), ErrorCode.BAD_IMAGE),
    (lambda: PixelImage(b"1234", True, 1), ErrorCode.BAD_IMAGE),
    (lambda: image(4, 3, "RGBA", stride=15), ErrorCode.BAD_IMAGE),           # stride below a row
    (lambda: image(4, 3, "RGBA", "uint16", stride=33), ErrorCode.BAD_IMAGE),  # stride not sample-aligned
    (lambda: image(4, 3, nbytes=47), ErrorCode.BAD_IMAGE),                   # truncated buffer
    (lambda: image(4, 3, nbytes=49), ErrorCode.BAD_IMAGE),                   # extra bytes
])
def test_pixel_image_rejects_impossible_descriptions(make, code):
    assert code_of(make) == code


def test_colorize_request_round_trip():
    mask = image(4, 3, "GRAY")
    request = ColorizeRequest(image(), mask, alternatives=2, seed=7, class_choice="goldfish",
                              class_alternatives=True, walk=["saturation", 2], variation=2)
    back = ColorizeRequest.from_message(unpack(KEY, request.pack(KEY, "job")))
    assert back.image.descriptor() == request.image.descriptor()
    assert back.mask.descriptor() == mask.descriptor()
    assert (back.alternatives, back.seed, back.class_choice, back.class_alternatives, back.walk, back.variation) == \
        (2, 7, "goldfish", True, ("saturation", 2.0), 2.0)
    assert isinstance(back.variation, float)
    # A header without a variation (an older client) gets the paper's scale.
    header = msgpack.unpackb(request.pack(KEY, "job")[1])
    assert header["variation"] == 2.0
    assert ColorizeRequest(image()).variation == 1.0
    assert ColorizeRequest(image()).class_alternatives is True  # the alternatives that differ most


@pytest.mark.parametrize("options, code", [
    (dict(mask=image(4, 3, "RGBA")), ErrorCode.BAD_MASK),
    (dict(mask=image(3, 3, "GRAY")), ErrorCode.BAD_MASK),
    (dict(alternatives=-1), ErrorCode.BAD_PARAMETER),
    (dict(alternatives=2.0), ErrorCode.BAD_PARAMETER),
    (dict(seed=-1), ErrorCode.BAD_PARAMETER),
    (dict(seed=2**63), ErrorCode.BAD_PARAMETER),
    (dict(seed="7"), ErrorCode.BAD_PARAMETER),
    (dict(class_choice=""), ErrorCode.BAD_PARAMETER),
    (dict(class_choice=None), ErrorCode.BAD_PARAMETER),
    (dict(class_alternatives="yes"), ErrorCode.BAD_PARAMETER),
    (dict(walk=("saturation",)), ErrorCode.BAD_PARAMETER),
    (dict(walk=("saturation", float("nan"))), ErrorCode.BAD_PARAMETER),
    (dict(walk=("", 1.0)), ErrorCode.BAD_PARAMETER),
    (dict(variation=-0.5), ErrorCode.BAD_PARAMETER),
    (dict(variation=4.5), ErrorCode.BAD_PARAMETER),
    (dict(variation=float("nan")), ErrorCode.BAD_PARAMETER),
    (dict(variation=float("inf")), ErrorCode.BAD_PARAMETER),
    (dict(variation="2"), ErrorCode.BAD_PARAMETER),
    (dict(variation=True), ErrorCode.BAD_PARAMETER),
])
def test_colorize_request_rejects_bad_parameters(options, code):
    assert code_of(lambda: ColorizeRequest(image(), **options)) == code


def test_colorize_request_frames_must_match_descriptors():
    frames = ColorizeRequest(image()).pack(KEY, "job")
    header = msgpack.unpackb(frames[1])
    no_pixels = signed(frames[1])
    assert code_of(lambda: ColorizeRequest.from_message(unpack(KEY, no_pixels))) == ErrorCode.MALFORMED
    header["image"]["height"] = 4  # claims more rows than the frame holds
    lying = signed(msgpack.packb(header), bytes(frames[2]))
    assert code_of(lambda: ColorizeRequest.from_message(unpack(KEY, lying))) == ErrorCode.BAD_IMAGE
    del header["image"]["stride"]
    incomplete = signed(msgpack.packb(header), bytes(frames[2]))
    assert code_of(lambda: ColorizeRequest.from_message(unpack(KEY, incomplete))) == ErrorCode.MALFORMED


def test_result_round_trip():
    results = [ResultImage(image(4, 3, "RGB", "uint16"), "colorized", 5, 1, "goldfish"),
               ResultImage(image(4, 3, "RGB", "uint16"), "alternative 1", 5, 1, "goldfish")]
    images, timing = unpack_result(unpack(KEY, pack_result(KEY, "job", results, {"total": 1.5})))
    assert [(r.label, r.class_name, r.image.descriptor()) for r in images] == \
        [(r.label, r.class_name, r.image.descriptor()) for r in results]
    assert timing == {"total": 1.5}
