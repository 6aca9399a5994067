"""The webhook HTTP app: verify -> parse -> validate -> start one workflow -> 202.

Bad input never reaches a workflow and never produces a 5xx: size cap (413) before reading the
body, signature (401/403) before parsing it, JSON and field validation (400) before starting.
5xx is only for our own faults (500) or Temporal/Postgres being unavailable (503).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg
import structlog
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from learnflow.contracts import IngestSourceInput, OcwUnpublishInput
from webhook_service import models as m
from webhook_service import targets as t
from webhook_service.certificates import (
    PublicProgramCertificate,
    RoleNotProvisionedError,
    list_program_certificates,
)
from webhook_service.config import WebhookConfig
from webhook_service.dedupe import (
    DeliveryStore,
    MemoryDeliveryStore,
    PostgresDeliveryStore,
    Seen,
)
from webhook_service.openapi import build_openapi
from webhook_service.signatures import SignatureError, Verified, verify
from webhook_service.starter import StarterUnavailable, WorkflowStarter

log = structlog.get_logger("webhook_service")
M = TypeVar("M", bound=BaseModel)

_EMAIL = re.compile(r"^[^@\s\x00-\x1f]{1,200}@[^@\s\x00-\x1f]{1,200}$")


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, detail: str, errors: list[m.FieldError] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.errors = errors or []


def _error_response(
    status: int,
    error: str,
    detail: str,
    errors: list | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = m.ErrorResponse(error=error, detail=detail, errors=errors or [])
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def _field_errors(exc: ValidationError) -> list[m.FieldError]:
    # Never echo `input`: it may be a secret or personal data.
    return [
        m.FieldError(
            loc=[p for p in e["loc"] if isinstance(p, str | int)], msg=e["msg"], type=e["type"]
        )
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


async def read_body_capped(request: Request, cap: int) -> bytes:
    """Read the body as a stream and stop as soon as it passes `cap` (413)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ApiError(413, "too_large", f"body over {cap} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise ApiError(413, "too_large", f"body over {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def parse_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise ApiError(400, "malformed_json", "empty body")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "malformed_json", f"body is not valid JSON: {str(exc)[:200]}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "body must be a JSON object")
    return data


def _validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = _field_errors(exc)
        first = errors[0] if errors else None
        detail = f"{'.'.join(map(str, first.loc)) or 'body'}: {first.msg}" if first else "invalid"
        raise ApiError(400, "invalid_body", detail, errors) from exc


def event_key(endpoint: str, verified: Verified | None, body_digest: str) -> str | None:
    """What makes two deliveries the same event: the Standard Webhooks id, or for MIT Learn's
    scheme (no id, no timestamp) the signed body itself. None: no dedupe (OCW's keyed webhook)."""
    if verified is None:
        return None
    if verified.webhook_id:
        return f"{endpoint}|id|{verified.webhook_id}"
    return f"{endpoint}|body|{body_digest}"


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class _Service:
    def __init__(self, config: WebhookConfig, starter: WorkflowStarter) -> None:
        self.config = config
        self.starter = starter
        self.pool: asyncpg.Pool | None = None
        self._deliveries: DeliveryStore | None = None
        self.openapi = build_openapi()

    async def signed(self, request: Request) -> tuple[Verified, bytes, dict[str, Any]]:
        body = await read_body_capped(request, self.config.max_body_bytes)
        verified = verify(self.config, request.headers, body)
        return verified, body, parse_object(body)

    async def start(
        self,
        request: Request,
        verified: Verified | None,
        body: bytes,
        target: t.Target,
        arg: BaseModel,
        workflow_id: str,
    ) -> JSONResponse:
        endpoint = request.url.path
        body_digest = t.digest(body, 64)
        key = event_key(endpoint, verified, body_digest)
        if key is not None:
            deliveries = await self.deliveries()
            try:
                seen = await deliveries.claim(
                    key, Seen(body_digest, workflow_id), self.config.dedupe_lease_seconds
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("webhook.dedupe_unavailable", endpoint=endpoint, error=repr(exc))
                raise ApiError(
                    503, "unavailable", "delivery store unavailable, retry later"
                ) from exc
            if seen is not None:
                if seen.body_digest != body_digest:
                    raise ApiError(409, "conflict", "webhook-id reused with a different body")
                log.info(
                    "webhook.duplicate",
                    endpoint=endpoint,
                    workflow_id=seen.workflow_id,
                    scheme=verified.scheme if verified else "",
                )
                return self._accepted(seen.workflow_id)
        try:
            started = await self.starter.start(target.workflow, arg, workflow_id, target.task_queue)
        except BaseException as exc:
            if key is not None:
                await (await self.deliveries()).release(key)  # the sender's retry may start it
            if isinstance(exc, StarterUnavailable):
                log.warning("webhook.temporal_unavailable", endpoint=endpoint, error=str(exc))
                raise ApiError(
                    503, "unavailable", "workflow service unavailable, retry later"
                ) from exc
            raise
        if key is not None:
            await (await self.deliveries()).confirm(key, self.config.dedupe_ttl_seconds)
        log.info(
            "webhook.accepted",
            endpoint=endpoint,
            workflow=target.workflow,
            workflow_id=started,
            scheme=verified.scheme if verified else "ocw_key",
        )
        return self._accepted(started)

    @staticmethod
    def _accepted(workflow_id: str) -> JSONResponse:
        return JSONResponse(
            m.AcceptedResponse(workflow_id=workflow_id).model_dump(mode="json"), status_code=202
        )

    async def deliveries(self) -> DeliveryStore:
        """Postgres when the service has a database (shared by its processes), else memory."""
        if self._deliveries is None:
            if self.config.database_url:
                self._deliveries = PostgresDeliveryStore(await self.get_pool())
            else:
                self._deliveries = MemoryDeliveryStore(self.config.dedupe_max_entries)
        return self._deliveries

    async def get_pool(self) -> asyncpg.Pool:
        if not self.config.database_url:
            raise ApiError(503, "unavailable", "certificate database not configured")
        if self.pool is None:
            try:
                self.pool = await asyncpg.create_pool(
                    self.config.database_url,
                    min_size=0,
                    max_size=4,
                    timeout=5,
                    command_timeout=10,
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise ApiError(503, "unavailable", "certificate database unavailable") from exc
        return self.pool

    # ---- endpoints ----

    async def content_files(self, request: Request) -> Response:
        verified, body, data = await self.signed(request)
        hook = _validate(m.ContentFileWebhook, data)
        arg = m.ArchiveWebhookInput(
            source=hook.source,
            content_path=hook.content_path,
            run_id=hook.course_readable_id or hook.course_id,
            overwrite=False,
        )
        wid = t.workflow_id(t.INGEST_ARCHIVE, hook.source, hook.content_path)
        return await self.start(request, verified, body, t.INGEST_ARCHIVE, arg, wid)

    async def content_files_delete(self, request: Request) -> Response:
        verified, body, data = await self.signed(request)
        hook = _validate(m.ContentFileDeleteWebhook, data)
        arg = m.DeleteCourseContentInput(source=hook.source, course_id=hook.course_id)
        wid = t.workflow_id(t.DELETE_COURSE_CONTENT, hook.source, hook.course_id)
        return await self.start(request, verified, body, t.DELETE_COURSE_CONTENT, arg, wid)

    async def ovs_videos(self, request: Request) -> Response:
        verified, body, data = await self.signed(request)
        if "delete" in data or "video_id" in data:
            gone = _validate(m.OvsVideoDelete, data)
            wid = t.workflow_id(t.DELETE_OVS_VIDEO, gone.video_id)
            arg: BaseModel = m.OvsVideoDeleteInput(key=gone.video_id)
            return await self.start(request, verified, body, t.DELETE_OVS_VIDEO, arg, wid)
        video = _validate(m.OvsVideo, data)
        hosts = self.config.ovs_allowed_media_hosts
        for where, url in video.media_urls():
            problem = m.media_url_problem(url, hosts)
            if problem:
                err = m.FieldError(
                    loc=where.replace("]", "").replace("[", ".").split("."),
                    msg=f"media URL {problem}",
                    type="media_url",
                )
                raise ApiError(400, "invalid_body", f"{where}: media URL {problem}", [err])
        if video.cta_link and m.media_url_problem(video.cta_link, hosts):
            video = video.model_copy(update={"cta_link": None})  # MIT Learn drops it, not the video
        validated = video.model_dump(mode="json")
        canonical = _canonical(validated)
        if len(canonical) > self.config.ovs_inline_max_bytes:
            raise ApiError(413, "too_large", "validated OVS video too large to pass to a workflow")
        wid = t.workflow_id(t.INGEST_OVS_VIDEO, video.key, t.digest(canonical))
        arg = m.OvsVideoWebhookInput(key=video.key, video=validated)
        return await self.start(request, verified, body, t.INGEST_OVS_VIDEO, arg, wid)

    async def ocw_next_webhook(self, request: Request) -> Response:
        body = await read_body_capped(request, self.config.max_body_bytes)
        data = parse_object(body)
        given = data.get("webhook_key")
        if given is None:
            raise ApiError(401, "unauthorized", "webhook_key missing")
        expected = self.config.ocw_webhook_key
        if (
            expected is None
            or not expected.get_secret_value()
            or not isinstance(given, str)
            or not hmac.compare_digest(
                given.encode("utf-8", "surrogatepass"), expected.get_secret_value().encode()
            )
        ):
            raise ApiError(403, "forbidden", "incorrect webhook_key")
        hook = _validate(m.OcwWebhook, data)
        if hook.version != "live":
            ignored = m.IgnoredResponse(reason="not a live version")
            return JSONResponse(ignored.model_dump(mode="json"), status_code=200)
        prefixes = hook.all_prefixes()
        if prefixes:
            joined = ",".join(prefixes)
            arg: BaseModel = IngestSourceInput(source="ocw", options={"prefixes": joined})
            wid = t.workflow_id(t.INGEST_SOURCE, t.digest(joined, 32))
            return await self.start(request, None, body, t.INGEST_SOURCE, arg, wid)
        if hook.site_uid and hook.unpublished:
            arg = OcwUnpublishInput(site_uid=hook.site_uid)
            wid = t.workflow_id(t.UNPUBLISH_OCW_COURSE, hook.site_uid)
            return await self.start(request, None, body, t.UNPUBLISH_OCW_COURSE, arg, wid)
        raise ApiError(
            400,
            "invalid_body",
            "no action: give prefix/prefixes, or site_uid with unpublished=true",
        )

    async def program_certificates(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthorized", "bearer token required")
        matched = False
        for allowed in self.config.certificates_api_tokens:
            matched |= hmac.compare_digest(
                token.encode("utf-8", "surrogatepass"), allowed.get_secret_value().encode()
            )
        if not matched:
            raise ApiError(403, "forbidden", "bearer token not accepted")
        email = request.query_params.get("email", "")
        if not _EMAIL.fullmatch(email) or len(email) > 256:
            raise ApiError(400, "invalid_query", "email: a valid email address is required")
        pool = await self.get_pool()
        try:
            async with pool.acquire() as conn:
                certs = await list_program_certificates(conn, email)
        except (
            OSError,
            TimeoutError,
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
        ) as exc:
            raise ApiError(503, "unavailable", "certificate database unavailable") from exc
        except RoleNotProvisionedError as exc:
            log.error("certificates.role_missing", error=str(exc))
            raise ApiError(503, "unavailable", "certificate roles not provisioned") from exc
        results = [
            PublicProgramCertificate.model_validate(c.model_dump()).model_dump(mode="json")
            for c in certs
        ]
        return JSONResponse({"count": len(results), "results": results})

    async def openapi_doc(self, request: Request) -> Response:
        return JSONResponse(self.openapi)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse(m.HealthResponse().model_dump())


async def _api_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, SignatureError):
        log.info("webhook.refused", path=request.url.path, status=exc.status, reason=exc.reason)
        error = "unauthorized" if exc.status == 401 else "forbidden"
        return _error_response(exc.status, error, exc.reason)
    assert isinstance(exc, ApiError)
    if exc.status < 500:
        log.info("webhook.refused", path=request.url.path, status=exc.status, reason=exc.error)
    headers = {"Retry-After": "30"} if exc.status == 503 else None
    return _error_response(exc.status, exc.error, exc.detail, exc.errors, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error_response(exc.status_code, "http_error", str(exc.detail), headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("webhook.server_error", path=request.url.path, error_type=type(exc).__name__)
    return _error_response(500, "server_error", "internal error")


def create_app(config: WebhookConfig, starter: WorkflowStarter) -> Starlette:
    """The ASGI app. `starter` is the Temporal seam (TemporalStarter / LazyTemporalStarter)."""
    if not config.secrets and config.schemes:
        raise ValueError("no webhook secret configured (WEBHOOK_SECRET / WEBHOOK_SECRETS)")
    svc = _Service(config, starter)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if svc.pool is not None:
            await svc.pool.close()

    routes = [
        Route("/api/v1/webhooks/content_files/", svc.content_files, methods=["POST"]),
        Route("/api/v1/webhooks/content_files/delete/", svc.content_files_delete, methods=["POST"]),
        Route("/api/v1/webhooks/ovs_videos/", svc.ovs_videos, methods=["POST"]),
        Route("/api/v1/ocw_next_webhook/", svc.ocw_next_webhook, methods=["POST"]),
        Route("/api/v1/program_certificates/", svc.program_certificates, methods=["GET"]),
        Route("/openapi.json", svc.openapi_doc, methods=["GET"]),
        Route("/healthz", svc.healthz, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            SignatureError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.state.service = svc
    return app


def app_from_env() -> Starlette:
    """uvicorn factory for `learn webhooks serve`: settings from the environment, Temporal
    connected lazily in the serving loop."""
    from learnflow.settings import get_settings
    from webhook_service.config import webhook_config
    from webhook_service.starter import LazyTemporalStarter

    settings = get_settings()
    starter = LazyTemporalStarter(
        settings.temporal_address,
        settings.temporal_namespace,
        start_timeout=timedelta(seconds=settings.webhook_start_timeout_seconds),
    )
    return create_app(webhook_config(settings), starter)
