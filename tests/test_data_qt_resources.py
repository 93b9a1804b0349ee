"""Qt resource archive reader, against archives written here from the format's facts."""

import struct
import zlib

import pytest

from gcp_colorize.data.qt_resources import QtResourceArchive, ResourceArchiveError


def write_rcc(path, files, version=3, compress=()):
    """A minimal .rcc holding `files` ({"dir/name": bytes}); nodes in breadth-first order
    as rcc writes them (children of a directory are consecutive)."""
    tree = {}
    for name, data in files.items():
        node = tree
        *dirs, leaf = name.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = data
    names, data_blob, nodes = b"", b"", []
    name_offsets = {}

    def name_offset(name):
        nonlocal names
        if name not in name_offsets:
            encoded = name.encode("utf-16-be")
            name_offsets[name] = len(names)
            names += struct.pack(">HI", len(name), 0) + encoded
        return name_offsets[name]

    # breadth-first: node index 0 is the root
    nodes.append(["", tree])
    i = 0
    layout = []
    while i < len(nodes):
        name, content = nodes[i]
        if isinstance(content, dict):
            first = len(nodes)
            for child in sorted(content):
                nodes.append([child, content[child]])
            layout.append(("dir", name, len(content), first))
        else:
            layout.append(("file", name, content))
        i += 1
    tree_blob = b""
    for index, entry in enumerate(layout):
        if entry[0] == "dir":
            _, name, count, first = entry
            node = struct.pack(">IHII", name_offset(name) if index else 0, 2, count, first)
        else:
            _, name, content = entry
            flags = 0
            payload = content
            if name in compress:
                flags = 1
                payload = struct.pack(">I", len(content)) + zlib.compress(content)
            node = struct.pack(">IHHHI", name_offset(name), flags, 0, 0, len(data_blob))
            data_blob += struct.pack(">I", len(payload)) + payload
        if version >= 2:
            node += struct.pack(">Q", 0)
        tree_blob += node
    header_size = 24 if version >= 3 else 20
    data_offset = header_size
    names_offset = data_offset + len(data_blob)
    tree_offset = names_offset + len(names)
    header = b"qres" + struct.pack(">IIII", version, tree_offset, data_offset, names_offset)
    if version >= 3:
        header += struct.pack(">I", 0)
    path.write_bytes(header + data_blob + names + tree_blob)


FILES = {
    "gcompris/src/a/one.webp": b"first file",
    "gcompris/src/a/two.bin": bytes(range(256)) * 10,
    "gcompris/src/b/three.txt": "üñí".encode(),
    "top.txt": b"",
}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_lists_and_reads_every_file(tmp_path, version):
    path = tmp_path / "x.rcc"
    write_rcc(path, FILES, version=version, compress={"two.bin"})
    archive = QtResourceArchive(path)
    assert set(archive.files) == set(FILES)
    for name, data in FILES.items():
        assert archive.read(name) == data
    assert archive.files["gcompris/src/a/two.bin"][0] == 1  # stored zlib-compressed


def test_unicode_names(tmp_path):
    path = tmp_path / "u.rcc"
    write_rcc(path, {"dír/ñame.webp": b"ok"})
    assert QtResourceArchive(path).read("dír/ñame.webp") == b"ok"


def test_bad_archives_raise_clear_errors(tmp_path):
    path = tmp_path / "bad.rcc"
    path.write_bytes(b"PK\x03\x04 not an rcc")
    with pytest.raises(ResourceArchiveError, match="magic"):
        QtResourceArchive(path)
    path.write_bytes(b"qres\x00\x00")
    with pytest.raises(ResourceArchiveError, match="truncated"):
        QtResourceArchive(path)
    write_rcc(path, FILES)
    truncated = path.read_bytes()[:-30]
    path.write_bytes(truncated)
    with pytest.raises(ResourceArchiveError):
        QtResourceArchive(path)


def test_missing_file_is_a_key_error(tmp_path):
    path = tmp_path / "x.rcc"
    write_rcc(path, FILES)
    with pytest.raises(KeyError, match="no file"):
        QtResourceArchive(path).read("gcompris/none.webp")
