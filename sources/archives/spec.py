"""Archive sources: course archives (OLX tarballs, Canvas `.imscc`) under a bucket prefix.

A source module declares `ARCHIVE = ArchiveSource(...)` beside its `SOURCE` (edx, mitxonline,
xpro, oll; Canvas in `sources/archives/canvas.py`); `sources.all_archive_sources()` finds them
the way `all_sources()` finds `SOURCE`. The key rules here are pure: which course an S3 key
belongs to, the newest archive per course, and MIT Learn's run-id matching.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from learnflow.contracts.archives import ArchiveRef

if TYPE_CHECKING:
    from learnflow.db.content_files import ArchiveRun
    from learnflow.settings import Settings

OLX_SUFFIXES = (".tar.gz", ".tgz", ".tar")
CANVAS_SUFFIXES = (".imscc",)


@dataclass(frozen=True)
class ArchiveSource:
    name: str  # MIT Learn's ETL source
    platform: str
    kind: Literal["olx", "canvas"]
    prefix_setting: str
    base_url_setting: str | None
    course_id_from: Literal["folder", "filename", "canvas_folder"]

    def prefix(self, s: Settings) -> str:
        return str(getattr(s, self.prefix_setting)).strip("/") + "/"

    def base_url(self, s: Settings) -> str | None:
        return getattr(s, self.base_url_setting) if self.base_url_setting else None

    @property
    def suffixes(self) -> tuple[str, ...]:
        return CANVAS_SUFFIXES if self.kind == "canvas" else OLX_SUFFIXES


def strip_suffix(name: str, suffixes: Iterable[str]) -> str:
    lowered = name.lower()
    for suffix in suffixes:
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


def course_id_for_key(src: ArchiveSource, key: str, prefix: str) -> str | None:
    """The course an archive key belongs to (MIT Learn: parent folder; OLL: the file name;
    Canvas: the first folder under the prefix). None for keys that are not archives."""
    if not key.startswith(prefix) or not key.lower().endswith(src.suffixes):
        return None
    rest = key[len(prefix) :]
    parts = [p for p in rest.split("/") if p]
    if not parts:
        return None
    if src.course_id_from == "canvas_folder":
        return parts[0] if len(parts) > 1 else None
    if src.course_id_from == "folder" and len(parts) > 1:
        return parts[-2]
    return strip_suffix(parts[-1], src.suffixes) or None


def newest_per_course(
    src: ArchiveSource, prefix: str, objects: Iterable[tuple[str, datetime | None]]
) -> dict[str, ArchiveRef]:
    """The most recently modified archive of each course (ties: the greater key)."""
    newest: dict[str, ArchiveRef] = {}
    floor = datetime.min.replace(tzinfo=UTC)
    for key, modified in objects:
        course = course_id_for_key(src, key, prefix)
        if course is None:
            continue
        seen = newest.get(course)
        if seen is None or ((modified or floor), key) > ((seen.last_modified or floor), seen.key):
            newest[course] = ArchiveRef(course_id=course, key=key, last_modified=modified)
    return newest


def normalise_run_id(etl_source: str, run_id: str) -> str:
    """MIT Learn's run matching: edX ids compare with `-`/`+` as `.`, lowercased, without
    `course.v1:`; OLL also `_` as `.` and no `mitx.` prefix; other sources compare exactly."""
    if etl_source not in ("mit_edx", "oll"):
        return run_id
    value = re.sub(r"[-+]", ".", run_id.lower()).removeprefix("course.v1:")
    if etl_source == "oll":
        value = value.replace("_", ".").removeprefix("mitx.")
    return value


def match_run(etl_source: str, course_id: str, runs: Iterable[ArchiveRun]) -> list[ArchiveRun]:
    wanted = normalise_run_id(etl_source, course_id)
    return [r for r in runs if normalise_run_id(etl_source, r.run_id) == wanted]
