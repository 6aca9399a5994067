"""Archive-level change detection: MIT Learn's tar-header checksum and its Canvas zip checksum.

OLX archives: MIT Learn stores `str(hash(tuple(m.chksum for m in tar.getmembers())))`. Each tar
header checksum covers the member's name, size, mtime, mode, owner and type, so a re-export with
identical headers (the `_no_change` fixture, whose gzip wrapper differs) counts as unchanged while
an edited file or new mtimes do not. Python's tuple hash is stable for ints but is a 64-bit,
platform-sized value; learnflow stores a SHA-256 hex digest over the same ordered list instead
(`tar_header_checksum`). `legacy_tar_checksum` reproduces MIT Learn's string for migrations.

Canvas `.imscc` archives: MD5 over the sorted `(filename, file_size, CRC)` of every member except
`imsmanifest.xml` and `course_settings/` (Canvas rewrites those on every export), plus the sorted
`(path, title)` of the published set and the URL config when given.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sources.archives.safe_extract import (
    CorruptArchiveError,
    ExtractionLimits,
    TooManyMembersError,
)

CANVAS_CHECKSUM_EXCLUDED_FILES = frozenset({"imsmanifest.xml"})
CANVAS_CHECKSUM_EXCLUDED_PREFIXES = ("course_settings/",)


def tar_header_checksums(
    archive: str | os.PathLike[str], limits: ExtractionLimits | None = None
) -> list[int]:
    """The `chksum` of every tar header, in archive order (reads headers, extracts nothing)."""
    limits = limits or ExtractionLimits()
    sums: list[int] = []
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                sums.append(member.chksum)
                if len(sums) > limits.max_members:
                    raise TooManyMembersError(
                        f"more than {limits.max_members} members", member.name
                    )
    except tarfile.ReadError as exc:
        if "empty file" in str(exc):
            return sums
        raise CorruptArchiveError(f"unreadable tar: {exc}", Path(archive).name) from exc
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise CorruptArchiveError(f"unreadable tar: {exc}", Path(archive).name) from exc
    return sums


def tar_header_checksum(
    archive: str | os.PathLike[str], limits: ExtractionLimits | None = None
) -> str:
    """SHA-256 hex over the ordered header checksums (order-sensitive, like a tuple hash)."""
    sums = tar_header_checksums(archive, limits)
    return hashlib.sha256(",".join(str(s) for s in sums).encode()).hexdigest()


def legacy_tar_checksum(archive: str | os.PathLike[str]) -> str:
    """MIT Learn's exact `run.checksum` string, to compare with values migrated from it."""
    return str(hash(tuple(tar_header_checksums(archive))))


def _canvas_member_included(name: str) -> bool:
    return name not in CANVAS_CHECKSUM_EXCLUDED_FILES and not name.startswith(
        CANVAS_CHECKSUM_EXCLUDED_PREFIXES
    )


def canvas_archive_checksum(
    archive: str | os.PathLike[str],
    published: Iterable[tuple[str, str | None]] = (),
    url_config: Mapping[str, Any] | None = None,
) -> str:
    """MD5 hex of the Canvas change-detection payload (see module docstring)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = sorted(
                (info.filename, info.file_size, info.CRC)
                for info in zf.infolist()
                if _canvas_member_included(info.filename)
            )
    except zipfile.BadZipFile as exc:
        raise CorruptArchiveError(f"unreadable zip: {exc}", Path(archive).name) from exc
    payload = {
        "members": members,
        "published": sorted((str(p), t or "") for p, t in published),
        "url_config": url_config or {},
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.md5(blob.encode()).hexdigest()  # noqa: S324 - MIT Learn's checksum, not security


def archive_checksum(archive: str | os.PathLike[str]) -> str:
    """The change-detection checksum for any course archive: Canvas rule for zips, else tar."""
    if zipfile.is_zipfile(archive):
        with open(archive, "rb") as f:
            if f.read(4) in (b"PK\x03\x04", b"PK\x05\x06"):
                return canvas_archive_checksum(archive)
    return tar_header_checksum(archive)
