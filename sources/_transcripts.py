"""Caption files → transcript text (pure), and the page that carries transcripts to a transform.

MIT Learn reads an OVS video's English WebVTT captions through Tika and stores the text as the
video's `transcript`, which its search indexes. Here WebVTT is read directly (a line format: a
header, cues of an optional id, a timing line and text lines, NOTE/STYLE blocks), so no Tika
round trip is needed for a caption file. YouTube's caption endpoint answers WebVTT too
(`fmt=vtt`, sources/youtube.py). `carried_and_fetched` is the extract side both sources share.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from learnflow.db.by_key import stored_transcripts

log = structlog.get_logger(__name__)

TRANSCRIPTS_KIND = "transcripts"
_TIMING = re.compile(r"^\s*(\d+:)?\d{1,2}:\d{2}[.,]\d{3}\s+-->\s+")
_TAG = re.compile(r"<[^>]+>")


def vtt_text(body: str | bytes) -> str:
    """The spoken text of a WebVTT file: cue text only, tags removed, a line repeated by the next
    cue (roll-up captions) kept once. A body without the WEBVTT header (an error page) is no
    caption: ""."""
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    if not body.lstrip("\ufeff \t\r\n").startswith("WEBVTT"):
        return ""
    lines: list[str] = []
    skipping = False
    for raw in body.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            skipping = False
            continue
        if skipping or line.startswith("WEBVTT"):
            continue
        if line.startswith(("NOTE", "STYLE", "REGION")):
            skipping = True  # a block that runs to the next blank line
            continue
        if _TIMING.match(line) or line.isdigit():
            continue
        text = html.unescape(_TAG.sub("", line)).strip()
        if text and (not lines or lines[-1] != text):
            lines.append(text)
    return " ".join(lines)


def transcripts_page(texts: dict[str, str]) -> bytes:
    """The raw page a source's extract stores: `{"transcripts": {readable_id: text}}`."""
    return json.dumps({TRANSCRIPTS_KIND: texts}, ensure_ascii=False).encode()


def transcripts_in(context: Sequence[Any]) -> dict[str, str]:
    """Every transcript the context pages carry (a later page wins)."""
    out: dict[str, str] = {}
    for page in context:
        if isinstance(page, dict) and isinstance(page.get(TRANSCRIPTS_KIND), dict):
            out.update({k: v for k, v in page[TRANSCRIPTS_KIND].items() if isinstance(v, str)})
    return out


def truthy(value: Any) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes")


async def carried_and_fetched(
    ctx: Any, etl_source: str, fetch: Callable[[set[str]], Awaitable[dict[str, str]]]
) -> dict[str, str]:
    """The transcripts a run's videos pages are transformed with. The catalog's stored ones carry
    over (a run without the option keeps them); `options["transcripts"]` fetches the captions of
    videos that have none (`fetch(skip)`), `options["overwrite"]` of every video (MIT Learn's
    transcripts jobs)."""
    stored = await stored_transcripts(ctx.pool, etl_source) if ctx.pool is not None else {}
    if not truthy(ctx.options.get("transcripts")):
        return stored
    skip = set() if truthy(ctx.options.get("overwrite")) else set(stored)
    fetched = await fetch(skip)
    log.info(
        "transcripts", source=etl_source, fetched=len(fetched), kept=len(set(stored) - set(fetched))
    )
    return {**stored, **fetched}
