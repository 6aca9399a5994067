"""Webhook service configuration: `WebhookConfig`, the frozen object `create_app` takes, derived
from the one `learnflow.settings.Settings` by `webhook_config()` (WEBHOOK_*, OCW_WEBHOOK_KEY,
OVS_*, PROGRAM_CERTIFICATES_API_TOKENS, DATABASE_URL). Tests build a WebhookConfig directly."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from learnflow.settings import DEFAULT_OVS_MEDIA_HOSTS, Settings, get_settings, host_list

Scheme = Literal["mitlearn", "standard"]
SCHEMES: tuple[Scheme, ...] = ("mitlearn", "standard")


def standard_key(secret: str) -> bytes:
    """Standard Webhooks key bytes: `whsec_<base64>` decodes, anything else is its UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("a whsec_ secret must be base64 after the prefix") from exc
    return secret.encode()


class WebhookConfig(BaseModel):
    """Everything `create_app` needs. Secrets stay SecretStr so they never reach a log line."""

    model_config = ConfigDict(frozen=True)

    # Every secret is accepted at once: add the new one, move senders, then drop the old one.
    secrets: tuple[SecretStr, ...] = ()
    schemes: frozenset[Scheme] = frozenset(SCHEMES)
    tolerance_seconds: int = 300
    max_body_bytes: int = 256 * 1024
    # Largest validated OVS video passed to a workflow inline; a bigger one is refused (413).
    ovs_inline_max_bytes: int = 64 * 1024
    # Replay window: a delivery of an event (same webhook-id, or for MIT Learn's scheme the same
    # signed body) already started within it starts nothing and gets the first workflow id.
    dedupe_ttl_seconds: int = 900
    # How long a claimed event waits for its workflow start before another delivery may retry it.
    dedupe_lease_seconds: int = 30
    # Single-process store (no DATABASE_URL): most events remembered.
    dedupe_max_entries: int = 100_000
    ocw_webhook_key: SecretStr | None = None
    ovs_allowed_media_hosts: frozenset[str] = frozenset(DEFAULT_OVS_MEDIA_HOSTS)
    # ProgramCertificate read side; empty database_url = endpoint answers 503.
    database_url: str = ""
    certificates_api_tokens: tuple[SecretStr, ...] = ()

    @field_validator("secrets")
    @classmethod
    def _secrets_decode(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for s in value:
            if not s.get_secret_value():
                raise ValueError("an empty webhook secret is not allowed")
            standard_key(s.get_secret_value())
        return value

    @field_validator("ovs_allowed_media_hosts")
    @classmethod
    def _hosts_lower(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(host_list(list(value)))

    def standard_keys(self) -> list[bytes]:
        return [standard_key(s.get_secret_value()) for s in self.secrets]

    def mitlearn_keys(self) -> list[bytes]:
        # MIT Learn's sender signs with the literal setting string, whsec_ prefix or not.
        return [s.get_secret_value().encode() for s in self.secrets]


def webhook_config(settings: Settings | None = None) -> WebhookConfig:
    """The app's config from the one Settings object (the environment by default).

    Raises ValueError on an unknown WEBHOOK_SCHEMES name or an undecodable whsec_ secret."""
    s = settings or get_settings()
    secrets: list[str] = [s.webhook_secret.get_secret_value()] if s.webhook_secret else []
    secrets += [v for x in s.webhook_secrets if (v := x.get_secret_value()) not in secrets]
    unknown = set(s.webhook_schemes) - set(SCHEMES)
    if unknown:
        raise ValueError(f"unknown WEBHOOK_SCHEMES {sorted(unknown)}; known: {SCHEMES}")
    return WebhookConfig(
        secrets=tuple(SecretStr(v) for v in secrets),
        schemes=frozenset(s.webhook_schemes),  # type: ignore[arg-type]
        tolerance_seconds=s.webhook_tolerance_seconds,
        max_body_bytes=s.webhook_max_body_bytes,
        ovs_inline_max_bytes=s.ovs_webhook_inline_max_bytes,
        dedupe_ttl_seconds=s.webhook_dedupe_ttl_seconds,
        ocw_webhook_key=s.ocw_webhook_key,
        ovs_allowed_media_hosts=frozenset(s.ovs_allowed_media_hosts),
        database_url=s.database_url,
        certificates_api_tokens=tuple(s.program_certificates_api_tokens),
    )
