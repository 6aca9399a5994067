"""Page tokens: opaque, HMAC-signed, bound to the request's parameters, and their contents
checked by a schema after the signature (a token signed with a leaked or old key still cannot
carry a negative offset, a string, or an id past int64 into a query).

The key is SEARCH_PAGE_TOKEN_SECRET. There is no built-in key: unset with auth on (production's
posture) the service refuses to start; unset with auth off (a trusted network) it logs a warning
and uses a random key for this process, so its tokens die with it. `learn up` and the tests set
one explicitly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog
from google.protobuf import message as pb_message
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from learnflow.settings import Settings
from search_service.errors import InvalidArgument

log = structlog.get_logger(__name__)

MAX_WINDOW = 10_000  # offset + page_size (OpenSearch's max_result_window)
INT64_MAX = 2**63 - 1


class _State(BaseModel):
    # strict: 1e30, "5", true are not ints; extra keys are refused
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class OffsetState(_State):
    """SearchResources / SearchContentFiles: the next page's offset."""

    o: int = Field(ge=0, le=MAX_WINDOW)


class ChangesState(_State):
    """ListChangedResources: the last (updated_on, id) returned."""

    t: AwareDatetime
    i: int = Field(ge=0, le=INT64_MAX)


S = TypeVar("S", bound=_State)


class _Body(BaseModel, Generic[S]):
    model_config = ConfigDict(strict=True, extra="forbid")

    s: S
    f: str = Field(max_length=64)


_MALFORMED = [("page_token", "malformed or tampered page token")]


@dataclass
class PageTokens:
    secret: bytes

    @staticmethod
    def fingerprint(req: pb_message.Message) -> str:
        copy = type(req)()
        copy.CopyFrom(req)
        for name in ("page_token", "offset", "page_size"):
            if name in copy.DESCRIPTOR.fields_by_name:
                copy.ClearField(name)
        blob = type(req).DESCRIPTOR.full_name.encode() + copy.SerializeToString(deterministic=True)
        return hashlib.sha256(blob).hexdigest()[:32]

    def encode(self, req: pb_message.Message, state: _State) -> str:
        data = {"s": state.model_dump(mode="json"), "f": self.fingerprint(req)}
        body = json.dumps(data, separators=(",", ":")).encode()
        mac = hmac.new(self.secret, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")

    def decode(self, req: pb_message.Message, schema: type[S]) -> S:
        """The token's state as `schema`, or INVALID_ARGUMENT for any problem with it."""
        token = req.page_token  # type: ignore[attr-defined]
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(_MALFORMED) from exc
        mac, body = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, hmac.new(self.secret, body, hashlib.sha256).digest()[:16]):
            raise InvalidArgument(_MALFORMED)
        try:
            parsed = _Body[schema].model_validate_json(body)  # type: ignore[valid-type]
        except ValidationError as exc:
            raise InvalidArgument(
                [("page_token", "page token contents are not valid for this request")]
            ) from exc
        if parsed.f != self.fingerprint(req):
            raise InvalidArgument(
                [("page_token", "page token was issued for different request parameters")]
            )
        return parsed.s


def token_secret(settings: Settings, auth_on: bool) -> bytes:
    """The page-token key from SEARCH_PAGE_TOKEN_SECRET (see the module docstring)."""
    secret = settings.search_page_token_secret
    if secret is not None and secret.get_secret_value():
        return secret.get_secret_value().encode()
    if auth_on:
        raise ValueError(
            "SEARCH_PAGE_TOKEN_SECRET is not set: a production search service (auth on) needs "
            "its own page-token key, shared by its replicas (e.g. `openssl rand -hex 32`)"
        )
    log.warning(
        "page_tokens.random_key",
        reason="SEARCH_PAGE_TOKEN_SECRET is not set; this process uses a random key, so its "
        "page tokens are refused by every other process and after a restart",
    )
    return os.urandom(32)
