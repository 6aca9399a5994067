"""Webhook signatures, verified over the raw body before anything parses it.

- MIT Learn: `X-MITLearn-Signature` = lowercase hex HMAC-SHA256(secret, body). No timestamp, so
  replays are only harmless because workflow ids are deterministic; config can switch it off.
- Standard Webhooks v1: `webhook-id`, `webhook-timestamp`, `webhook-signature` = space-separated
  `v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>`; +-tolerance on the timestamp.

Statuses: no signature of an accepted scheme, a malformed or missing id/timestamp, or a stale or
future timestamp -> 401; a signature present but matching no secret -> 403.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from webhook_service.config import WebhookConfig

MITLEARN_HEADER = "x-mitlearn-signature"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

_WEBHOOK_ID = re.compile(r"^[A-Za-z0-9_\-:]{1,256}$")  # no "." (it separates the signed parts)
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class SignatureError(Exception):
    """Refused delivery: `status` is 401 or 403, `reason` is safe to return to the sender."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    scheme: str
    webhook_id: str | None = None
    timestamp: int | None = None


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def mitlearn_signature(secret: str | bytes, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return _hmac(key, body).hex()


def standard_signature(key: bytes, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(_hmac(key, signed)).decode()


def standard_headers(
    keys: Iterable[bytes], webhook_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """Headers a Standard Webhooks sender attaches (one `v1,` entry per key: rotation)."""
    ts = int(time.time()) if timestamp is None else timestamp
    sigs = " ".join(standard_signature(k, webhook_id, ts, body) for k in keys)
    return {ID_HEADER: webhook_id, TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sigs}


def _ascii(value: str) -> bytes:
    return value.encode("ascii", "replace")


def verify_mitlearn(keys: Iterable[bytes], body: bytes, header: str) -> Verified:
    given = _ascii(header.strip())
    matched = False
    for key in keys:
        # No early exit: the time taken does not say which secret (if any) matched.
        matched |= hmac.compare_digest(_ascii(mitlearn_signature(key, body)), given)
    if not matched:
        raise SignatureError(403, "X-MITLearn-Signature does not match")
    return Verified("mitlearn")


def verify_standard(
    keys: Iterable[bytes],
    body: bytes,
    headers: Mapping[str, str],
    tolerance_seconds: int,
    now: float | None = None,
) -> Verified:
    webhook_id = headers.get(ID_HEADER)
    ts_raw = headers.get(TIMESTAMP_HEADER)
    sig_header = headers.get(SIGNATURE_HEADER, "")
    if not webhook_id or not ts_raw:
        raise SignatureError(401, "webhook-id and webhook-timestamp headers are required")
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise SignatureError(401, "malformed webhook-id")
    if not _TIMESTAMP.fullmatch(ts_raw):
        raise SignatureError(401, "malformed webhook-timestamp")
    timestamp = int(ts_raw)
    current = time.time() if now is None else now
    if timestamp < current - tolerance_seconds:
        raise SignatureError(401, "webhook-timestamp too old")
    if timestamp > current + tolerance_seconds:
        raise SignatureError(401, "webhook-timestamp in the future")
    given = []
    for part in sig_header.split(" "):
        version, _, value = part.partition(",")
        if version == "v1" and value:
            given.append(_ascii(value))
    if not given:
        raise SignatureError(403, "webhook-signature has no v1 signature")
    matched = False
    for key in keys:
        expected = _ascii(standard_signature(key, webhook_id, timestamp, body).removeprefix("v1,"))
        for g in given:
            matched |= hmac.compare_digest(expected, g)
    if not matched:
        raise SignatureError(403, "webhook-signature does not match")
    return Verified("standard", webhook_id=webhook_id, timestamp=timestamp)


def verify(
    config: WebhookConfig, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> Verified:
    """Verify with the first accepted scheme whose headers are present; never fall back after a
    present-but-bad Standard Webhooks signature."""
    if "standard" in config.schemes and (
        SIGNATURE_HEADER in headers or ID_HEADER in headers or TIMESTAMP_HEADER in headers
    ):
        return verify_standard(
            config.standard_keys(), body, headers, config.tolerance_seconds, now=now
        )
    if "mitlearn" in config.schemes and MITLEARN_HEADER in headers:
        return verify_mitlearn(config.mitlearn_keys(), body, headers[MITLEARN_HEADER])
    if MITLEARN_HEADER in headers or SIGNATURE_HEADER in headers:
        raise SignatureError(401, "signature scheme not accepted by this endpoint")
    raise SignatureError(401, "missing signature")
