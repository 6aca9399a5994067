"""Safe extraction of course archives (`.tar`, `.tar.gz`, `.zip`, `.imscc`) into a temp directory.

Archives come from S3 buckets other teams write to, so every member is validated here before a
byte is written: no absolute or `..` paths, no links that leave the directory (links are never
created at all: hard links inside the tree are copied, symlinks inside are skipped), no devices or
fifos, and budgets on member count, member size, total size and compression ratio. Members are
streamed to disk one by one with a byte budget; tarfile's `data` filter is not relied on (it has
been bypassed repeatedly, see CVE-2025-4517 and CVE-2026-11940).
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

_CHUNK = 1 << 16
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ExtractionLimits:
    """Caps for one archive (nested archives share the outer archive's budget)."""

    max_members: int = 20_000
    max_member_bytes: int = 512 * 1024 * 1024
    max_total_bytes: int = 4 * 1024 * 1024 * 1024
    # Unpacked bytes per compressed byte of the outer archive; checked once past `ratio_floor_bytes`
    # so tiny archives of empty files (a 45-byte empty.tar.gz unpacks to 10 KiB) pass.
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 8 * 1024 * 1024
    max_nesting: int = 2
    max_path_chars: int = 1024
    # A tar wrapping a tar at its top level (`exported_courses_*.tar.gz`) is unpacked in place;
    # archives deeper in the tree (a course's `static/lab.tar.gz`) stay files.
    expand_nested: bool = True


class UnsafeArchiveError(Exception):
    """The archive was refused; `reason` says why, `member` names the culprit when known."""

    def __init__(self, reason: str, member: str | None = None) -> None:
        self.reason = reason
        self.member = member
        super().__init__(f"{reason}: {member}" if member else reason)


class PathTraversalError(UnsafeArchiveError):
    """Absolute path, drive letter, `..` component or NUL byte in a member name."""


class LinkEscapeError(UnsafeArchiveError):
    """A symlink or hard link pointing outside the extraction directory."""


class SpecialFileError(UnsafeArchiveError):
    """Device, fifo, sparse or otherwise non-regular member."""


class TooManyMembersError(UnsafeArchiveError):
    """More members than `max_members`."""


class MemberTooLargeError(UnsafeArchiveError):
    """One member larger than `max_member_bytes`."""


class TotalSizeExceededError(UnsafeArchiveError):
    """All members together larger than `max_total_bytes`."""


class CompressionRatioError(UnsafeArchiveError):
    """Unpacked size out of proportion to the compressed size (a decompression bomb)."""


class NestingTooDeepError(UnsafeArchiveError):
    """Archives nested deeper than `max_nesting`."""


class CorruptArchiveError(UnsafeArchiveError):
    """Not a readable tar or zip, encrypted, truncated or with lying headers."""


@dataclass
class ExtractedArchive:
    """What landed on disk: `root` and the regular files under it (relative POSIX paths)."""

    root: Path
    files: list[str] = field(default_factory=list)
    total_bytes: int = 0
    skipped_links: list[str] = field(default_factory=list)
    nested: list[str] = field(default_factory=list)


class _Budget:
    def __init__(self, limits: ExtractionLimits, compressed_bytes: int) -> None:
        self.limits = limits
        self.compressed = max(compressed_bytes, 1)
        self.members = 0
        self.total = 0

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise TooManyMembersError(f"more than {self.limits.max_members} members", name)

    def declare(self, name: str, size: int) -> None:
        if size < 0:
            raise CorruptArchiveError("negative member size", name)
        if size > self.limits.max_member_bytes:
            raise MemberTooLargeError(
                f"member of {size} bytes exceeds {self.limits.max_member_bytes}", name
            )
        if self.total + size > self.limits.max_total_bytes:
            raise TotalSizeExceededError(
                f"total unpacked size exceeds {self.limits.max_total_bytes}", name
            )
        self._ratio(name, self.total + size)

    def consume(self, name: str, n: int) -> None:
        self.total += n
        if self.total > self.limits.max_total_bytes:
            raise TotalSizeExceededError(
                f"total unpacked size exceeds {self.limits.max_total_bytes}", name
            )
        self._ratio(name, self.total)

    def _ratio(self, name: str, total: int) -> None:
        lim = self.limits
        if total > lim.ratio_floor_bytes and total > lim.max_ratio * self.compressed:
            raise CompressionRatioError(
                f"unpacked {total} bytes from {self.compressed} compressed "
                f"(ratio above {lim.max_ratio:g})",
                name,
            )


def _safe_relpath(name: str, limits: ExtractionLimits) -> str:
    """Validate a member name and return it as a clean relative POSIX path ('' for the root)."""
    if "\x00" in name:
        raise PathTraversalError("NUL byte in member name", name)
    if len(name) > limits.max_path_chars:
        raise PathTraversalError("member name too long", name[:80])
    unified = name.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified):
        raise PathTraversalError("absolute member path", name)
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PathTraversalError("'..' in member path", name)
    return "/".join(parts)


def _target(root: Path, rel: str, name: str) -> Path:
    """The on-disk path for `rel`, checked to stay under `root` with no symlinked parent."""
    target = root.joinpath(*rel.split("/")) if rel else root
    real = Path(os.path.realpath(target))
    if real != root and root not in real.parents:
        raise PathTraversalError("member resolves outside the extraction directory", name)
    return target


def _link_inside(rel_member: str, link: str, *, relative_to_member: bool) -> str | None:
    """Resolve a link target lexically; None when it leaves the tree."""
    if not link or "\x00" in link:
        return None
    link = link.replace("\\", "/")
    if link.startswith("/") or _DRIVE.match(link):
        return None
    base = posixpath.dirname(rel_member) if relative_to_member else ""
    joined = posixpath.normpath(posixpath.join(base, link))
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        return None
    return "" if joined == "." else joined


def _mkdirs(root: Path, rel: str, name: str) -> None:
    if not rel:
        return
    current = root
    for part in rel.split("/"):
        current = current / part
        if current.is_symlink():
            raise LinkEscapeError("path runs through a symlink", name)
        if not current.exists():
            current.mkdir(mode=0o755)
        elif not current.is_dir():
            raise CorruptArchiveError("a file and a directory share a path", name)


def _write_stream(
    src: IO[bytes], root: Path, rel: str, name: str, budget: _Budget, declared: int | None
) -> int:
    _mkdirs(root, posixpath.dirname(rel), name)
    target = _target(root, rel, name)
    if target.is_symlink() or target.is_dir():
        raise CorruptArchiveError("member overwrites a directory or link", name)
    if target.exists():
        target.unlink()  # tar may carry a later version of the same member
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o644)
    written = 0
    with os.fdopen(fd, "wb") as out:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > budget.limits.max_member_bytes:
                raise MemberTooLargeError("member grew past its size cap while streaming", name)
            if declared is not None and written > declared:
                raise CorruptArchiveError("member larger than its header says", name)
            budget.consume(name, len(chunk))
            out.write(chunk)
    return written


def _detect(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return "tar"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    name = path.name.lower()
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    raise CorruptArchiveError("not a tar or zip archive", path.name)


def _is_nested_archive(rel: str) -> bool:
    return rel.lower().endswith(_TAR_SUFFIXES)


def _extract_tar(
    path: Path, root: Path, budget: _Budget, report: ExtractedArchive, prefix: str
) -> list[str]:
    written: list[str] = []
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                name = member.name
                budget.member(name)
                rel = _safe_relpath(name, budget.limits)
                full = posixpath.join(prefix, rel) if rel else prefix
                if member.isdir():
                    _mkdirs(root, full, name)
                elif member.issym():
                    if _link_inside(rel, member.linkname, relative_to_member=True) is None:
                        raise LinkEscapeError(f"symlink to {member.linkname!r}", name)
                    report.skipped_links.append(full)
                elif member.islnk():
                    inside = _link_inside(rel, member.linkname, relative_to_member=False)
                    if inside is None:
                        raise LinkEscapeError(f"hard link to {member.linkname!r}", name)
                    source = _target(root, posixpath.join(prefix, inside), name)
                    if source.is_symlink() or not source.is_file():
                        raise LinkEscapeError("hard link to a missing or non-regular file", name)
                    budget.declare(name, source.stat().st_size)
                    with open(source, "rb") as src:
                        _write_stream(src, root, full, name, budget, None)
                    written.append(full)
                elif member.isreg() and not member.issparse():
                    budget.declare(name, member.size)
                    src = tar.extractfile(member)
                    if src is None:
                        raise CorruptArchiveError("unreadable member", name)
                    _write_stream(src, root, full, name, budget, member.size)
                    written.append(full)
                else:
                    kind = {
                        tarfile.CHRTYPE: "character device",
                        tarfile.BLKTYPE: "block device",
                        tarfile.FIFOTYPE: "fifo",
                    }.get(member.type, "sparse" if member.issparse() else "special file")
                    raise SpecialFileError(f"{kind} member", name)
    except tarfile.ReadError as exc:
        if "empty file" in str(exc):
            return written  # an empty archive is a legitimate (empty) course export
        raise CorruptArchiveError(f"unreadable tar: {exc}", path.name) from exc
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise CorruptArchiveError(f"unreadable tar: {exc}", path.name) from exc
    return written


def _extract_zip(
    path: Path, root: Path, budget: _Budget, report: ExtractedArchive, prefix: str
) -> list[str]:
    written: list[str] = []
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) + budget.members > budget.limits.max_members:
                raise TooManyMembersError(
                    f"more than {budget.limits.max_members} members", path.name
                )
            for info in infos:
                name = info.filename
                budget.member(name)
                rel = _safe_relpath(name, budget.limits)
                full = posixpath.join(prefix, rel) if rel else prefix
                mode = info.external_attr >> 16
                if info.flag_bits & 0x1:
                    raise CorruptArchiveError("encrypted member", name)
                if stat.S_ISLNK(mode):
                    budget.declare(name, info.file_size)
                    if info.file_size > budget.limits.max_path_chars:
                        raise LinkEscapeError("symlink target too long", name)
                    link = zf.read(info).decode("utf-8", "replace")
                    if _link_inside(rel, link, relative_to_member=True) is None:
                        raise LinkEscapeError(f"symlink to {link!r}", name)
                    report.skipped_links.append(full)
                    continue
                if mode and (
                    stat.S_ISCHR(mode)
                    or stat.S_ISBLK(mode)
                    or stat.S_ISFIFO(mode)
                    or stat.S_ISSOCK(mode)
                ):
                    raise SpecialFileError("device, fifo or socket member", name)
                if info.is_dir():
                    _mkdirs(root, full, name)
                    continue
                budget.declare(name, info.file_size)
                if (
                    info.compress_size
                    and info.file_size > budget.limits.ratio_floor_bytes
                    and info.file_size / info.compress_size > budget.limits.max_ratio
                ):
                    raise CompressionRatioError("member compression ratio too high", name)
                with zf.open(info) as src:
                    _write_stream(src, root, full, name, budget, info.file_size)
                written.append(full)
    except zipfile.BadZipFile as exc:
        raise CorruptArchiveError(f"unreadable zip: {exc}", path.name) from exc
    except (zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise CorruptArchiveError(f"unreadable zip: {exc}", path.name) from exc
    return written


def _extract_into(
    path: Path,
    root: Path,
    budget: _Budget,
    report: ExtractedArchive,
    prefix: str = "",
    depth: int = 0,
) -> None:
    kind = _detect(path)
    extract = _extract_tar if kind == "tar" else _extract_zip
    written = extract(path, root, budget, report, prefix)
    for rel in written:
        top_level = "/" not in rel.removeprefix(prefix).lstrip("/")
        if budget.limits.expand_nested and kind == "tar" and top_level and _is_nested_archive(rel):
            if depth + 1 > budget.limits.max_nesting:
                raise NestingTooDeepError(
                    f"archives nested deeper than {budget.limits.max_nesting}", rel
                )
            inner = root.joinpath(*rel.split("/"))
            stem = rel
            for suffix in _TAR_SUFFIXES:
                if stem.lower().endswith(suffix):
                    stem = stem[: -len(suffix)]
                    break
            if (root.joinpath(*stem.split("/"))).exists():
                stem = f"{stem}__unpacked"
            _mkdirs(root, stem, rel)
            size = inner.stat().st_size
            budget.total -= size  # the inner archive's bytes are replaced by its contents
            report.nested.append(rel)
            _extract_into(inner, root, budget, report, prefix=stem, depth=depth + 1)
            inner.unlink()
        else:
            report.files.append(rel)


def extract_archive(
    archive: str | os.PathLike[str], dest: str | os.PathLike[str], limits: ExtractionLimits
) -> ExtractedArchive:
    """Extract `archive` into the existing, empty directory `dest`; raise UnsafeArchiveError."""
    path = Path(archive)
    root = Path(os.path.realpath(dest))
    if any(root.iterdir()):
        raise ValueError(f"extraction directory {root} is not empty")
    report = ExtractedArchive(root=root)
    budget = _Budget(limits, path.stat().st_size)
    _extract_into(path, root, budget, report)
    report.total_bytes = budget.total
    report.files.sort()
    return report


@contextmanager
def safe_extract(
    archive: str | os.PathLike[str],
    limits: ExtractionLimits | None = None,
    *,
    prefix: str = "learnflow-archive-",
    parent_dir: str | os.PathLike[str] | None = None,
) -> Iterator[ExtractedArchive]:
    """Extract into a fresh temporary directory, yield what was extracted, always remove it."""
    tmp = tempfile.mkdtemp(prefix=prefix, dir=parent_dir)
    try:
        yield extract_archive(archive, tmp, limits or ExtractionLimits())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
