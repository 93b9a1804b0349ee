"""Per-file licence notes from a package's machine-readable debian/copyright (DEP-5)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

WEBP_SOURCES = (".jpg", ".jpeg", ".png")


def parse_copyright(text: str) -> list[dict[str, str]]:
    """DEP-5 paragraphs as dicts of field -> value (continuation lines joined by newlines)."""
    paragraphs, current, field = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, field = {}, None
        elif line[0] in " \t" and field:
            current[field] += "\n" + line.strip()
        elif ":" in line:
            field, value = line.split(":", 1)
            current[field] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def _matches(pattern: str, suffixes: list[str]) -> bool:
    """Whether a DEP-5 pattern matches any of `suffixes` (the path and its trailing parts)."""
    if any(fnmatchcase(s, pattern) for s in suffixes):
        return True
    name = pattern.rsplit("/", 1)[-1]
    return not any(c in name for c in "*?[") and name in (s.rsplit("/", 1)[-1] for s in suffixes)


def licence_note(copyright_file: Path, path_in_source: str) -> str:
    """The licence of the last `Files:` paragraph matching the path (DEP-5 rule), matched
    against the path and each of its suffixes, since installed paths differ from source
    paths, or a pattern naming the file itself in another folder; a .webp also matches its
    .jpg/.jpeg/.png source (GCompris converts at build)."""
    if not copyright_file.is_file():
        return "unknown (package has no copyright file)"
    paragraphs = parse_copyright(copyright_file.read_text(encoding="utf-8", errors="replace"))
    parts = path_in_source.strip("/").split("/")
    suffixes = ["/".join(parts[i:]) for i in range(len(parts))]
    if path_in_source.endswith(".webp"):
        suffixes += [s.removesuffix(".webp") + ext for s in suffixes for ext in WEBP_SOURCES]
    licence = holder = None
    for paragraph in paragraphs:
        patterns = paragraph.get("Files", "").split()
        if any(_matches(p, suffixes) for p in patterns) and "License" in paragraph:
            licence = paragraph["License"].splitlines()[0]
            holder = paragraph.get("Copyright", "").splitlines()[0] if paragraph.get("Copyright") else ""
    if licence is None:
        return "unknown (no matching Files: paragraph in debian/copyright)"
    return f"{licence}; {holder}" if holder else licence
