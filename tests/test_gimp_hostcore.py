"""Host-independent logic the GIMP plug-in relies on (core/hostcore.py), no GIMP needed."""

import json

import pytest

from gcp_colorize.core.hostcore import (BACKEND_COMMAND_FILE, HostError, PixelFormat, backend_command,
                                        backend_environment, gimp_pixel_format, tight_rows)
from gcp_colorize.core.protocol import PixelImage

# Every Gimp.Precision of GIMP 3.0 (value names as GObject reports them).
COMPONENTS = {"U8": ("u8", "uint8"), "U16": ("u16", "uint16"), "U32": ("float", "float32"),
              "HALF": ("half", "float16"), "FLOAT": ("float", "float32"), "DOUBLE": ("float", "float32")}


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("encoding", ["LINEAR", "NON_LINEAR", "PERCEPTUAL"])
def test_every_gimp_precision_is_read_as_srgb_encoded_rgba_at_its_depth(component, encoding):
    babl_format, wire = gimp_pixel_format(f"GIMP_PRECISION_{component}_{encoding}")
    babl_type, dtype = COMPONENTS[component]
    # The prime marks ask GEGL for sRGB-encoded values whatever the image's own encoding.
    assert babl_format == f"R'G'B'A {babl_type}"
    assert wire == PixelFormat("RGBA", dtype)


@pytest.mark.parametrize("precision", ["GIMP_PRECISION_U64_LINEAR", "GIMP_PRECISION_U8_GAMMA", "", "U8"])
def test_unknown_gimp_precisions_are_refused_with_a_message(precision):
    with pytest.raises(HostError, match="cannot read GIMP images of precision"):
        gimp_pixel_format(precision)


def test_tight_rows_drops_row_padding_and_keeps_compact_images_as_they_are():
    padded = bytes([1, 2, 3, 4, 5, 6, 0, 0,
                    7, 8, 9, 10, 11, 12, 0, 0])
    image = PixelImage(padded, 3, 2, "GRAYA", "uint8", stride=8)
    assert bytes(tight_rows(image)) == bytes(range(1, 13))
    compact = PixelImage(bytes(range(12)), 3, 1, "RGBA", "uint8")
    assert bytes(tight_rows(compact)) == bytes(range(12))


def test_backend_command_is_read_from_the_file_next_to_the_plugin(tmp_path):
    (tmp_path / BACKEND_COMMAND_FILE).write_text(json.dumps({"command": ["/opt/venv/bin/python", "-m",
                                                                         "gcp_colorize", "serve"]}))
    assert backend_command(tmp_path) == ["/opt/venv/bin/python", "-m", "gcp_colorize", "serve"]


@pytest.mark.parametrize("content, words", [
    (None, "is missing"),
    ("not json", "Cannot read the backend command"),
    (json.dumps({"cmd": ["x"]}), "Cannot read the backend command"),
    (json.dumps({"command": "gcp-colorize serve"}), "does not hold a command"),
    (json.dumps({"command": []}), "does not hold a command"),
])
def test_a_missing_or_broken_backend_command_says_how_to_fix_it(tmp_path, content, words):
    if content is not None:
        (tmp_path / BACKEND_COMMAND_FILE).write_text(content)
    with pytest.raises(HostError, match=words) as info:
        backend_command(tmp_path)
    assert "gcp-colorize install-plugin" in str(info.value)


def test_the_backend_starts_without_the_hosts_python_paths():
    host = {"PATH": "/usr/bin", "HOME": "/home/a", "PYTHONPATH": "/opt/gimp/lib/python", "PYTHONHOME": "/opt/gimp"}
    assert backend_environment(host) == {"PATH": "/usr/bin", "HOME": "/home/a"}
