"""One settings object, read from the environment (pydantic-settings). No module reads os.environ."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from learnflow import REPO_ROOT


def _default_reference_dir() -> Path:
    return (REPO_ROOT.parent / "shared" / "fixtures" / "mitlearn").resolve()


class Settings(BaseSettings):
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
    qdrant_url: str = ""  # empty: embedded (qdrant-client local mode)
    qdrant_path: str = ""  # empty with no url: in memory
    qdrant_collection_prefix: str = "resource_embeddings"
    qdrant_encoder: str = "local"  # local | litellm
    qdrant_dense_model: str = "openai/text-embedding-3-small"
    litellm_api_base: str | None = None
    litellm_api_key: SecretStr | None = None
    litellm_chat_model: str = "openai/gpt-4o-mini"

    # gRPC search service
    grpc_address: str = "127.0.0.1:50051"

    # Reference data (platforms, offerors, departments, topics with crosswalks)
    reference_data_dir: Path = Field(default_factory=_default_reference_dir)

    # HTTP for sources
    http_timeout_seconds: float = 30.0
    http_max_response_bytes: int = 50 * 1024 * 1024
    http_user_agent: str = "learnflow/0.1 (+https://learn.mit.edu)"
    # Loopback/private source hosts are refused unless allowed (tests and `learn up --demo`).
    http_allow_private_hosts: bool = False

    # Prune guard: refuse to unpublish more than this share of a source's published items
    prune_max_share: float = 0.2

    # MITx Online
    mitx_online_base_url: str = "https://mitxonline.mit.edu"
    mitx_online_courses_api_url: str = ""
    mitx_online_programs_api_url: str = ""
    mitx_online_etl_api_key: SecretStr | None = None
    app_base_url: str = "https://learn.mit.edu"

    @property
    def mitxonline_courses_url(self) -> str:
        return self.mitx_online_courses_api_url or f"{self.mitx_online_base_url}/api/v2/courses/"

    @property
    def mitxonline_programs_url(self) -> str:
        return self.mitx_online_programs_api_url or f"{self.mitx_online_base_url}/api/v2/programs/"


DEFAULT_ENV_FILE = ".learnflow/learnflow.env"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env_file = os.environ.get("LEARNFLOW_ENV_FILE", DEFAULT_ENV_FILE)
    return Settings(_env_file=env_file or None)


def reset_settings() -> None:
    """Tests change the environment, then call this so the next get_settings() re-reads it."""
    get_settings.cache_clear()
