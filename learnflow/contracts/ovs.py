"""OVS video webhook: the workflow inputs the webhook service starts, and the media-URL rule that
the webhook (on arrival) and the OVS source (on ingest) both enforce."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def media_url_problem(url: str, allowed_hosts: frozenset[str]) -> str | None:
    """Why a media URL is refused (None when fine): https only, allow-listed host, no userinfo,
    no backslash or control characters, default port."""
    if "\\" in url or _CONTROL.search(url) or " " in url:
        return "contains a backslash, space or control character"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme != "https":
        return "must use https"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "must not carry userinfo"
    if port not in (None, 443):
        return "must use the default https port"
    host = (parts.hostname or "").lower()
    if host not in allowed_hosts:
        return f"host {host[:80]!r} is not allowed"
    return None


class OvsVideoWebhookInput(BaseModel):
    """IngestOvsVideoWorkflow: the validated video (small, < ovs_inline_max_bytes) and its key."""

    key: str
    video: dict[str, Any]


class OvsVideoDeleteInput(BaseModel):
    key: str
