"""MIT Learn's course blocklist: course readable ids, one a line, unpublished at load time.

MIT Learn's `load_course_blocklist` GETs `settings.BLOCKLISTED_COURSES_URL` on every course load
and `load_course` unpublishes a course whose readable id is on it. Here the fetch activity reads
the list once per run (`BLOCKLISTED_COURSES_URL`, through the source HTTP layer, or a local
file) into the run's blobs; `transform_page` applies it to every transformed page, and the list's
bytes join the page hash so a page is re-transformed when the list changes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from learnflow.http import SourceHttp
from learnflow.models import ResourceType, TransformOutput
from learnflow.settings import Settings
from sources._catalog import fetch


def blocklist_key(source: str, run_id: str) -> str:
    return f"raw/{source}/{run_id}/blocklist.txt"


def parse_blocklist(body: bytes) -> frozenset[str]:
    """One readable id a line; blank lines and surrounding spaces are ignored."""
    return frozenset(
        line.strip() for line in body.decode("utf-8", "replace").splitlines() if line.strip()
    )


def apply_blocklist(out: TransformOutput, blocked: frozenset[str]) -> TransformOutput:
    """Courses on the list come out unpublished (programs and other types are untouched)."""
    if not blocked:
        return out
    out.resources = [
        r.model_copy(update={"published": False})
        if r.resource_type == ResourceType.course and r.readable_id in blocked
        else r
        for r in out.resources
    ]
    return out


async def read_blocklist(settings: Settings) -> bytes:
    """The list's bytes: GET through SourceHttp (its host only) or read a local path."""
    url = settings.blocklisted_courses_url.strip()
    if not url:
        return b""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        try:
            path = Path(parts.path if parts.scheme == "file" else url)
            return await asyncio.to_thread(path.read_bytes)
        except OSError as exc:  # the fetch reports it as a failed run, as a page it cannot read
            raise ValueError(f"blocklist {url}: {exc}") from exc
    http = SourceHttp(
        {parts.hostname or ""},
        timeout=settings.http_timeout_seconds,
        max_bytes=settings.http_max_response_bytes,
        user_agent=settings.http_user_agent,
        allow_private=settings.http_allow_private_hosts,
    )
    try:
        return await fetch(http, url)
    finally:
        await http.aclose()
