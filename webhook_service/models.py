"""Webhook request bodies (validated before any workflow starts), the workflow inputs they become,
and the response shapes. Small models only: keys and small dicts, never blobs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

# Workflow/activity I/O lives in learnflow.contracts; re-exported where the webhook builds it.
from learnflow.contracts import OcwUnpublishInput as OcwUnpublishInput
from learnflow.contracts.archives import ArchiveWebhookInput as ArchiveWebhookInput
from learnflow.contracts.archives import DeleteCourseContentInput as DeleteCourseContentInput
from learnflow.contracts.ovs import OvsVideoDeleteInput as OvsVideoDeleteInput
from learnflow.contracts.ovs import OvsVideoWebhookInput as OvsVideoWebhookInput
from learnflow.contracts.ovs import media_url_problem as media_url_problem

# MIT Learn's ETLSource (learning_resources/etl/constants.py).
ETL_SOURCES = frozenset(
    {
        "mit_edx",
        "mitpe",
        "mitxonline",
        "oll",
        "ocw",
        "podcast",
        "mit_climate",
        "see",
        "xpro",
        "youtube",
        "canvas",
        "ovs",
    }
)
# Sources whose course archives arrive through the content_files webhook.
CONTENT_FILE_SOURCES = frozenset({"canvas", "mit_edx", "mitxonline", "xpro", "oll"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _source(value: str, allowed: frozenset[str]) -> str:
    if value not in ETL_SOURCES:
        raise ValueError(f"unknown source {value[:40]!r}")
    if value not in allowed:
        raise ValueError(f"source {value!r} does not send this webhook")
    return value


def _clean_text(value: str | None, field: str) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError(f"{field} contains control characters")
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


# Schema hints (the validators below are what enforce them): they let a fuzzer generate bodies
# that reach the workflow start, not only ones refused at validation.
_SOURCE_HINT = {"enum": sorted(CONTENT_FILE_SOURCES)}
_PATH_HINT = {"pattern": r"^[^/\\\x00-\x1f\x7f][^\\\x00-\x1f\x7f]*$"}
_PREFIX_PATTERN = r"^[A-Za-z0-9._~/+-]{1,512}$"


class ContentFileWebhook(_Body):
    """POST /api/v1/webhooks/content_files/: an archive landed at `content_path` in the bucket."""

    source: str = Field(max_length=32, json_schema_extra=_SOURCE_HINT)
    content_path: str = Field(min_length=1, max_length=1024, json_schema_extra=_PATH_HINT)
    course_id: str | None = Field(default=None, min_length=1, max_length=512)
    course_readable_id: str | None = Field(default=None, min_length=1, max_length=512)

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        return _source(v, CONTENT_FILE_SOURCES)

    @field_validator("content_path")
    @classmethod
    def _path(cls, v: str) -> str:
        _clean_text(v, "content_path")
        if "\\" in v or v.startswith("/") or ".." in v.split("/"):
            raise ValueError("content_path must be a relative object key without '..' or '\\'")
        return v

    @field_validator("course_id", "course_readable_id")
    @classmethod
    def _ids(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _clean_text(v, info.field_name or "id")


class ContentFileDeleteWebhook(_Body):
    """POST /api/v1/webhooks/content_files/delete/: remove a course's content files."""

    source: str = Field(max_length=32, json_schema_extra=_SOURCE_HINT)
    course_id: str = Field(min_length=1, max_length=512)

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        return _source(v, CONTENT_FILE_SOURCES)

    @field_validator("course_id")
    @classmethod
    def _course_id(cls, v: str) -> str:
        _clean_text(v, "course_id")
        if not v.strip():
            raise ValueError("course_id must not be blank")
        return v


class OvsSource(_Body):
    src: str = Field(max_length=2048)
    label: str | None = Field(default=None, max_length=256)
    type: str | None = Field(default=None, max_length=256)


class OvsThumbnail(_Body):
    cloudfront_url: str | None = Field(default=None, max_length=2048)
    s3_object_key: str | None = Field(default=None, max_length=1024)


class OvsSubtitle(_Body):
    s3_object_key: str = Field(max_length=1024)
    language: str = Field(min_length=1, max_length=16)
    filename: str | None = Field(default=None, max_length=512)
    language_name: str | None = Field(default=None, max_length=128)

    @field_validator("s3_object_key")
    @classmethod
    def _key(cls, v: str) -> str:
        # Becomes https://<cloudfront host>/<key>: keep it a plain relative path.
        if (
            _CONTROL.search(v)
            or "\\" in v
            or "://" in v
            or v.startswith("/")
            or ".." in v.split("/")
        ):
            raise ValueError("subtitle s3_object_key must be a plain relative key")
        return v


_OVS_KEY_PATTERN = r"^[A-Za-z0-9._-]{1,255}$"


class OvsCollection(_Body):
    key: str = Field(pattern=_OVS_KEY_PATTERN)
    title: str = Field(default="", max_length=512)
    description: str | None = Field(default=None, max_length=20_000)
    is_public: bool = True
    for_shorts: bool = False


class OvsVideo(_Body):
    """POST /api/v1/webhooks/ovs_videos/ with a full OVS video (the public API's shape)."""

    key: str = Field(pattern=_OVS_KEY_PATTERN)
    title: str = Field(min_length=1, max_length=512)
    description: str | None = Field(default=None, max_length=20_000)
    created_at: datetime | None = None
    status: str | None = Field(default=None, max_length=64)
    is_public: bool = True
    youtube_id: str | None = Field(default=None, max_length=64)
    sources: list[OvsSource] = Field(default_factory=list, max_length=50)
    cta_link: str | None = Field(default=None, max_length=2048)
    duration: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    videothumbnail_set: list[OvsThumbnail] = Field(default_factory=list, max_length=50)
    videosubtitle_set: list[OvsSubtitle] = Field(default_factory=list, max_length=50)
    collection: OvsCollection | None = None

    def media_urls(self) -> list[tuple[str, str]]:
        urls = [(f"sources[{i}].src", s.src) for i, s in enumerate(self.sources)]
        urls += [
            (f"videothumbnail_set[{i}].cloudfront_url", t.cloudfront_url)
            for i, t in enumerate(self.videothumbnail_set)
            if t.cloudfront_url
        ]
        return urls


class OvsVideoDelete(_Body):
    """POST /api/v1/webhooks/ovs_videos/ with `{"video_id": ..., "delete": true}`."""

    video_id: str = Field(pattern=_OVS_KEY_PATTERN)
    delete: Literal[True]


class OcwWebhook(_Body):
    """POST /api/v1/ocw_next_webhook/ from OCW Studio: publish (prefix/prefixes) or unpublish."""

    webhook_key: str | None = None
    # OCW Studio sends "live" or "draft"; anything but "live" is acknowledged and ignored.
    version: str | None = Field(
        default=None, max_length=32, json_schema_extra={"enum": ["live", "draft", None]}
    )
    prefix: str | None = Field(default=None, json_schema_extra={"pattern": _PREFIX_PATTERN})
    prefixes: list[str] | str | None = Field(
        default=None,
        json_schema_extra={
            "anyOf": [
                {"type": "array", "items": {"type": "string", "pattern": _PREFIX_PATTERN}},
                {"type": "string"},
                {"type": "null"},
            ]
        },
    )
    site_uid: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,64}$")
    unpublished: bool = False

    @field_validator("prefixes", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @model_validator(mode="after")
    def _prefix_list(self) -> OcwWebhook:
        items = [self.prefix] if self.prefix is not None else []
        items += list(self.prefixes or [])
        if len(items) > 1000:
            raise ValueError("at most 1000 prefixes per delivery")
        for p in items:
            if not re.fullmatch(_PREFIX_PATTERN, p) or ".." in p.split("/"):
                raise ValueError(f"invalid OCW prefix {p[:80]!r}")
        return self

    def all_prefixes(self) -> list[str]:
        items = [self.prefix] if self.prefix is not None else []
        items += list(self.prefixes or [])
        return sorted(set(items))


# ---- responses ----


class AcceptedResponse(BaseModel):
    status: Literal["accepted"] = "accepted"
    workflow_id: str


class IgnoredResponse(BaseModel):
    status: Literal["ignored"] = "ignored"
    reason: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    status: Literal["error"] = "error"
    error: str
    detail: str
    errors: list[FieldError] = Field(default_factory=list)


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
