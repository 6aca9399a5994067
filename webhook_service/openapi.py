"""The OpenAPI 3.1 document served at /openapi.json, built from the same pydantic models that
validate the bodies (so the fuzzer and the validator agree)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from webhook_service import models as m
from webhook_service.certificates import PublicProgramCertificate


class CertificateList(BaseModel):
    count: int
    results: list[PublicProgramCertificate]


_REF = "#/components/schemas/{model}"
_REQUEST_MODELS = [
    m.ContentFileWebhook,
    m.ContentFileDeleteWebhook,
    m.OvsVideo,
    m.OvsVideoDelete,
    m.OcwWebhook,
]
_RESPONSE_MODELS = [
    m.AcceptedResponse,
    m.IgnoredResponse,
    m.ErrorResponse,
    m.HealthResponse,
    CertificateList,
]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref(m.ErrorResponse), description)


_SIGNED_ERRORS = {
    "400": _error("Malformed JSON, missing or invalid fields, or an unknown source."),
    "401": _error(
        "No signature of an accepted scheme, malformed webhook-id/timestamp, or a timestamp "
        "outside the tolerance (stale or future)."
    ),
    "403": _error("A signature is present but matches no configured secret."),
    "409": _error("A webhook-id already seen with a different body."),
    "413": _error("Body larger than the configured cap (or an OVS video too large to pass on)."),
    "503": _error("Temporal is unavailable; retry later."),
}


def _signed_post(summary: str, body_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"mitlearnSignature": []}, {"standardWebhooks": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            },
            "responses": {
                "202": _json(
                    _ref(m.AcceptedResponse), "Accepted: the workflow id (same id for a repeat)."
                ),
                **_SIGNED_ERRORS,
            },
        }
    }


def build_openapi() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(model, "validation") for model in _REQUEST_MODELS]
        + [(model, "serialization") for model in _RESPONSE_MODELS],
        ref_template=_REF,
    )
    schemas = defs.get("$defs", {})
    paths: dict[str, Any] = {
        "/api/v1/webhooks/content_files/": _signed_post(
            "A course archive landed in the bucket: start IngestArchiveWorkflow.",
            _ref(m.ContentFileWebhook),
        ),
        "/api/v1/webhooks/content_files/delete/": _signed_post(
            "Delete a course's content: start DeleteCourseContentWorkflow.",
            _ref(m.ContentFileDeleteWebhook),
        ),
        "/api/v1/webhooks/ovs_videos/": _signed_post(
            "An OVS video changed (IngestOvsVideoWorkflow) or was deleted "
            "(DeleteOvsVideoWorkflow).",
            {"oneOf": [_ref(m.OvsVideo), _ref(m.OvsVideoDelete)]},
        ),
        "/api/v1/ocw_next_webhook/": {
            "post": {
                "summary": "OCW Studio published (prefixes) or unpublished (site_uid) a course. "
                "Authenticated by the body's webhook_key.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(m.OcwWebhook)}},
                },
                "responses": {
                    "200": _json(_ref(m.IgnoredResponse), "Not a live version: nothing started."),
                    "202": _json(_ref(m.AcceptedResponse), "Accepted."),
                    "400": _error("Malformed JSON, invalid fields or no action determinable."),
                    "401": _error("webhook_key missing."),
                    "403": _error("webhook_key wrong (or none configured)."),
                    "413": _error("Body larger than the configured cap."),
                    "503": _error("Temporal is unavailable; retry later."),
                },
            }
        },
        "/api/v1/program_certificates/": {
            "get": {
                "summary": "A learner's program certificates (from the reverse-ETL table).",
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "email",
                        "in": "query",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "minLength": 3,
                            "maxLength": 256,
                            "pattern": r"^[^@\s\x00-\x1f]{1,120}@[^@\s\x00-\x1f]{1,120}$",
                        },
                    }
                ],
                "responses": {
                    "200": _json(_ref(CertificateList), "Certificates, newest first."),
                    "400": _error("Missing or invalid email."),
                    "401": _error("Missing bearer token."),
                    "403": _error("Wrong bearer token."),
                    "503": _error("Database not configured or unavailable."),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness.",
                "responses": {"200": _json(_ref(m.HealthResponse), "Alive.")},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "learnflow webhooks",
            "version": "1",
            "description": "Signed inbound webhooks that start Temporal workflows "
            "(MIT Learn's X-MITLearn-Signature or Standard Webhooks v1), and the program "
            "certificate read endpoint.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "mitlearnSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-MITLearn-Signature",
                    "description": "Lowercase hex HMAC-SHA256 of the raw body.",
                },
                "standardWebhooks": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "webhook-signature",
                    "description": "Standard Webhooks v1 with webhook-id and webhook-timestamp.",
                },
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
