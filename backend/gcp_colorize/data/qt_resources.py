"""Reader for Qt binary resource archives (`.rcc`), enough to list and extract files.

Layout: magic `qres`, then big-endian u32 version, tree offset, data offset, names offset
(version 3 adds a u32 of overall flags). Tree nodes are 14 bytes (22 from version 2, which
appends a u64 modification time): name offset u32, flags u16, then for a directory child
count u32 and first-child node index u32, for a file country u16, language u16 and data
offset u32. A name is u16 length, u32 hash, UTF-16BE text. A file blob is u32 size then
bytes; flag 1 = zlib with a 4-byte uncompressed-length prefix, 4 = zstd, 2 = directory.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

MAGIC = b"qres"
FLAG_ZLIB = 1
FLAG_DIRECTORY = 2
FLAG_ZSTD = 4


class ResourceArchiveError(ValueError):
    """The file is not a readable Qt resource archive."""


class QtResourceArchive:
    """The files of one `.rcc` archive, by path (without the leading ':/')."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._blob = self.path.read_bytes()
        if self._blob[:4] != MAGIC:
            raise ResourceArchiveError(f"{self.path}: not a Qt resource archive (no 'qres' magic)")
        try:
            version, self._tree, self._data, self._names = struct.unpack_from(">4I", self._blob, 4)
        except struct.error as exc:
            raise ResourceArchiveError(f"{self.path}: truncated header") from exc
        if version not in (1, 2, 3):
            raise ResourceArchiveError(f"{self.path}: unsupported rcc format version {version}")
        self._node_size = 14 if version == 1 else 22
        self.files: dict[str, tuple[int, int]] = {}  # path -> (flags, data offset)
        self._walk(0, "", depth=0)

    def _node(self, index: int) -> tuple[int, int, int, int]:
        """(name offset, flags, a, b): a, b = child count, first child for a directory;
        (country << 16 | language), data offset for a file."""
        offset = self._tree + index * self._node_size
        if offset + 14 > len(self._blob):
            raise ResourceArchiveError(f"{self.path}: tree node {index} out of range")
        return struct.unpack_from(">IHII", self._blob, offset)

    def _name(self, offset: int) -> str:
        at = self._names + offset
        (length,) = struct.unpack_from(">H", self._blob, at)
        return self._blob[at + 6:at + 6 + 2 * length].decode("utf-16-be")

    def _walk(self, index: int, prefix: str, depth: int) -> None:
        if depth > 64:
            raise ResourceArchiveError(f"{self.path}: directory tree too deep (corrupt?)")
        _, flags, count, first = self._node(index)
        if not flags & FLAG_DIRECTORY:
            raise ResourceArchiveError(f"{self.path}: node {index} should be a directory")
        for child in range(first, first + count):
            name_offset, child_flags, _, data_offset = self._node(child)
            path = prefix + self._name(name_offset)
            if child_flags & FLAG_DIRECTORY:
                self._walk(child, path + "/", depth + 1)
            else:
                self.files[path] = (child_flags, data_offset)

    def read(self, path: str) -> bytes:
        """The (decompressed) bytes of the file at `path`."""
        try:
            flags, data_offset = self.files[path]
        except KeyError:
            raise KeyError(f"{self.path}: no file {path!r} in the archive") from None
        at = self._data + data_offset
        (size,) = struct.unpack_from(">I", self._blob, at)
        payload = self._blob[at + 4:at + 4 + size]
        if len(payload) != size:
            raise ResourceArchiveError(f"{self.path}: data of {path!r} is truncated")
        if flags & FLAG_ZSTD:
            raise ResourceArchiveError(
                f"{self.path}: {path!r} is zstd-compressed, which this reader does not support")
        if flags & FLAG_ZLIB:
            return zlib.decompress(payload[4:])
        return payload
