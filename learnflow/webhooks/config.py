"""Webhook service configuration: `WebhookConfig` (what the app needs) and `WebhookSettings` (read
from the environment; to be folded into `learnflow.settings.Settings` later)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Scheme = Literal["mitlearn", "standard"]
SCHEMES: tuple[Scheme, ...] = ("mitlearn", "standard")

# MIT Learn's OVS webhook allow-lists these media hosts (CloudFront distributions of OVS).
DEFAULT_MEDIA_HOSTS = ("du3yhovcx8dht.cloudfront.net", "d1rlgptj9v7p9j.cloudfront.net")


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
    dedupe_ttl_seconds: int = 900
    dedupe_max_entries: int = 100_000
    ocw_webhook_key: SecretStr | None = None
    ovs_allowed_media_hosts: frozenset[str] = frozenset(DEFAULT_MEDIA_HOSTS)
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
        return frozenset(h.strip().lower() for h in value if h.strip())

    def standard_keys(self) -> list[bytes]:
        return [standard_key(s.get_secret_value()) for s in self.secrets]

    def mitlearn_keys(self) -> list[bytes]:
        # MIT Learn's sender signs with the literal setting string, whsec_ prefix or not.
        return [s.get_secret_value().encode() for s in self.secrets]


CommaList = Annotated[list[str], NoDecode]


def _split(value: object) -> object:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class WebhookSettings(BaseSettings):
    """Environment: WEBHOOK_SECRET, WEBHOOK_SECRETS, WEBHOOK_SCHEMES, WEBHOOK_MAX_BODY_BYTES,
    WEBHOOK_TOLERANCE_SECONDS, WEBHOOK_DEDUPE_TTL_SECONDS, OVS_WEBHOOK_INLINE_MAX_BYTES,
    OCW_WEBHOOK_KEY, OVS_ALLOWED_MEDIA_HOSTS, PROGRAM_CERTIFICATES_API_TOKENS, DATABASE_URL,
    TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, WEBHOOK_START_TIMEOUT_SECONDS."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    webhook_secret: SecretStr | None = None
    webhook_secrets: CommaList = Field(default_factory=list)
    webhook_schemes: CommaList = Field(default_factory=lambda: list(SCHEMES))
    webhook_max_body_bytes: int = 256 * 1024
    webhook_tolerance_seconds: int = 300
    webhook_dedupe_ttl_seconds: int = 900
    ovs_webhook_inline_max_bytes: int = 64 * 1024
    ocw_webhook_key: SecretStr | None = None
    ovs_allowed_media_hosts: CommaList = Field(default_factory=lambda: list(DEFAULT_MEDIA_HOSTS))
    program_certificates_api_tokens: CommaList = Field(default_factory=list)
    database_url: str = ""
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    # Bound on one workflow start, SDK retries included: past it the delivery gets a 503.
    webhook_start_timeout_seconds: float = 5.0

    _split_lists = field_validator(
        "webhook_secrets",
        "webhook_schemes",
        "ovs_allowed_media_hosts",
        "program_certificates_api_tokens",
        mode="before",
    )(_split)

    def to_config(self) -> WebhookConfig:
        secrets = [self.webhook_secret.get_secret_value()] if self.webhook_secret else []
        secrets += [s for s in self.webhook_secrets if s not in secrets]
        unknown = set(self.webhook_schemes) - set(SCHEMES)
        if unknown:
            raise ValueError(f"unknown WEBHOOK_SCHEMES {sorted(unknown)}; known: {SCHEMES}")
        return WebhookConfig(
            secrets=tuple(SecretStr(s) for s in secrets),
            schemes=frozenset(self.webhook_schemes),  # type: ignore[arg-type]
            tolerance_seconds=self.webhook_tolerance_seconds,
            max_body_bytes=self.webhook_max_body_bytes,
            ovs_inline_max_bytes=self.ovs_webhook_inline_max_bytes,
            dedupe_ttl_seconds=self.webhook_dedupe_ttl_seconds,
            ocw_webhook_key=self.ocw_webhook_key,
            ovs_allowed_media_hosts=frozenset(self.ovs_allowed_media_hosts),
            database_url=self.database_url,
            certificates_api_tokens=tuple(
                SecretStr(t) for t in self.program_certificates_api_tokens
            ),
        )
