"""The gRPC search service (`learn.search.v1.SearchService`) on grpc.aio, with health and reflection.

Rankings (keyword, vector, and hybrid — the default for a query with text) live in `ranking.py`
and `hybrid.py`; request checking in `query.py` (pure), errors in `errors.py`, auth in
`auth.py`, backend health in `health.py`, AI answers in `answers.py`. Every backend call gets a
budget from the client's remaining deadline (`budget.py`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from learnflow.models import Resource, ResourceType
from learnflow.search_doc import to_search_document
from learnflow.settings import Settings
from learnflow.stores import Stores
from learnflow.stores.content_search import ContentStores, content_stores
from learnflow.stores.keyword import KeywordQuery
from learnflow.stores.vector_serving import ServingVectors, VectorServing
from search_service import query as rq
from search_service.answers import LLMConfig, build_messages, cited_ids, stream_completion
from search_service.auth import AuthConfig, JwtAuthInterceptor, JwtVerifier
from search_service.budget import (  # noqa: F401 (re-exported for callers of the first version)
    DEADLINE_MARGIN_SECONDS,
    DEFAULT_BACKEND_SECONDS,
    encode,
    within_budget,
)
from search_service.errors import (
    BackendUnavailable,
    InvalidArgument,
    NotFound,
    handles_errors,
    handles_stream_errors,
)
from search_service.health import BackendHealth
from search_service.page_tokens import ChangesState, OffsetState, PageTokens, token_secret
from search_service.pb import search_pb2, search_pb2_grpc
from search_service.ranking import rank_content_files, rank_resources
from search_service.validation import RequestGuard

log = structlog.get_logger(__name__)

SERVICE_NAME = search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name
# Kept for callers of the first version.
MAX_PAGE_SIZE = rq.MAX_PAGE_SIZE
DEFAULT_PAGE_SIZE = rq.DEFAULT_PAGE_SIZE
rrf = rq.rrf

ANSWER_SECONDS = 60.0
MAX_BATCH_IDS = 100
MAX_CHANGED_PAGE = 1000
AUTOCOMPLETE_TYPES = [str(t) for t in ResourceType]


class SearchService(search_pb2_grpc.SearchServiceServicer):
    def __init__(
        self,
        stores: Stores,
        token_secret: bytes,
        content: ContentStores | None = None,
        llm: LLMConfig | None = None,
    ):
        self.stores = stores
        self.tokens = PageTokens(token_secret)
        self._content = content
        self.llm = llm
        self._serving: VectorServing | None = None

    @property
    def content(self) -> ContentStores:
        if self._content is None:
            self._content = content_stores(self.stores.settings)
        return self._content

    @property
    def serving(self) -> VectorServing:
        """The promoted encoder's collections (after a change of encoder, the old ones serve
        until the new ones are complete)."""
        if self._serving is None:
            stores = self.stores
            configured = ServingVectors(
                stores.encoder_id,
                lambda: stores.encoder,
                stores.vector,
                lambda: self.content.vector,
            )
            self._serving = VectorServing(stores.settings, stores.pool, configured)
        return self._serving

    async def vectors(self, context) -> ServingVectors:
        return await within_budget(context, self.serving.current(), "catalog")

    def _offset(self, request) -> int:
        return self.tokens.decode(request, OffsetState).o if request.page_token else request.offset

    # -- SearchResources --------------------------------------------------------------------

    @handles_errors
    async def SearchResources(self, request, context):
        filters, limit = rq.validate_search(request)
        offset = self._offset(request)
        if offset + limit > rq.MAX_WINDOW:
            raise InvalidArgument([("page_token", "page is past the result window")])
        vectors = None
        if rq.effective_mode(request) != search_pb2.SEARCH_MODE_KEYWORD:
            vectors = await self.vectors(context)
        ranked = await rank_resources(
            self.stores, context, request, filters, offset, limit, vectors
        )
        response = search_pb2.SearchResourcesResponse(
            results=[
                search_pb2.SearchResult(resource=rq.resource_message(doc, request.view), score=s)
                for _id, s, doc in ranked.hits
            ],
            total=ranked.total,
            facets=rq.facet_messages(ranked.facets),
            mode=ranked.mode,
            unavailable=ranked.unavailable,
        )
        if offset + limit < min(ranked.total, rq.MAX_WINDOW):
            response.next_page_token = self.tokens.encode(request, OffsetState(o=offset + limit))
        return response

    # -- SearchContentFiles -----------------------------------------------------------------

    @handles_errors
    async def SearchContentFiles(self, request, context):
        filters, limit = rq.validate_content_search(request)
        offset = self._offset(request)
        if offset + limit > rq.MAX_WINDOW:
            raise InvalidArgument([("page_token", "page is past the result window")])
        vectors = await self.vectors(context)
        content = ContentStores(keyword=self.content.keyword, vector=vectors.content_files)
        ranked = await rank_content_files(
            content, vectors.encoder, context, request, filters, offset, limit
        )
        response = search_pb2.SearchContentFilesResponse(
            results=[
                search_pb2.ContentFileResult(
                    content_file=rq.content_file_message(doc, request.view), score=s
                )
                for _id, s, doc in ranked.hits
            ],
            total=ranked.total,
            facets=rq.facet_messages(ranked.facets),
        )
        if offset + limit < min(ranked.total, rq.MAX_WINDOW):
            response.next_page_token = self.tokens.encode(request, OffsetState(o=offset + limit))
        return response

    # -- Get / BatchGet ---------------------------------------------------------------------

    async def _documents(self, context, ids: list[int]) -> dict[int, dict]:
        rows = await within_budget(context, self.stores.catalog.get_resources(ids), "catalog")
        return {
            r.id: to_search_document(Resource.model_validate(r.data), r.id, r.created_on)
            for r in rows
            if r.published
        }

    @handles_errors
    async def GetResource(self, request, context):
        if request.id <= 0:
            raise InvalidArgument([("id", "a positive resource id is required")])
        docs = await self._documents(context, [request.id])
        if request.id not in docs:
            raise NotFound(f"learning resource {request.id} not found")
        return search_pb2.GetResourceResponse(
            resource=rq.resource_message(docs[request.id], request.view)
        )

    @handles_errors
    async def BatchGetResources(self, request, context):
        ids = list(dict.fromkeys(request.ids))
        violations = []
        if not ids:
            violations.append(("ids", "at least one id"))
        if len(ids) > MAX_BATCH_IDS:
            violations.append(("ids", f"at most {MAX_BATCH_IDS} ids"))
        if any(i <= 0 for i in ids):
            violations.append(("ids", "ids are positive"))
        if violations:
            raise InvalidArgument(violations)
        docs = await self._documents(context, ids)
        return search_pb2.BatchGetResourcesResponse(
            resources=[rq.resource_message(docs[i], request.view) for i in ids if i in docs],
            missing_ids=[i for i in ids if i not in docs],
        )

    # -- Autocomplete -----------------------------------------------------------------------

    @handles_errors
    async def Autocomplete(self, request, context):
        prefix = " ".join(request.prefix.split())
        violations = []
        if not prefix or len(prefix) > 100:
            violations.append(("prefix", "1 to 100 characters"))
        unknown = [t for t in request.resource_types if t not in AUTOCOMPLETE_TYPES]
        if unknown:
            violations.append(("resource_types", f"unknown types {unknown}"))
        if not 0 <= request.per_type <= 10:
            violations.append(("per_type", "between 0 and 10"))
        if violations:
            raise InvalidArgument(violations)
        per_type = request.per_type or 3
        types = list(dict.fromkeys(request.resource_types)) or AUTOCOMPLETE_TYPES
        words = prefix.lower().split()

        def matches(title: str) -> bool:
            # Engines without prefix support answer loosely; keep titles that really match.
            title_words = title.lower().split()
            n = len(words)
            for i in range(len(title_words) - n + 1):
                window = title_words[i : i + n]
                if window[:-1] == words[:-1] and window[-1].startswith(words[-1]):
                    return True
            return False

        async def one(rtype: str):
            q = KeywordQuery(
                title_prefix=prefix,
                filters={"resource_type": [rtype]},
                limit=per_type * 3,
                sort="-views",
            )
            return await self.stores.keyword.search(q)

        results = await within_budget(
            context, asyncio.gather(*(one(t) for t in types)), "keyword index"
        )
        groups = []
        for rtype, res in zip(types, results, strict=True):
            suggestions = [
                search_pb2.AutocompleteSuggestion(
                    id=h.id,
                    title=h.document.get("title") or "",
                    resource_type=rtype,
                    readable_id=h.document.get("readable_id") or "",
                    platform=(h.document.get("platform") or {}).get("code", ""),
                )
                for h in res.hits
                if matches(h.document.get("title") or "")
            ][:per_type]
            if suggestions:
                groups.append(
                    search_pb2.AutocompleteGroup(resource_type=rtype, suggestions=suggestions)
                )
        return search_pb2.AutocompleteResponse(groups=groups)

    # -- ListChangedResources ---------------------------------------------------------------

    @handles_errors
    async def ListChangedResources(self, request, context):
        violations = []
        if not request.HasField("since"):
            violations.append(("since", "required"))
        if not 0 <= request.page_size <= MAX_CHANGED_PAGE:
            violations.append(("page_size", f"between 0 and {MAX_CHANGED_PAGE}"))
        if violations:
            raise InvalidArgument(violations)
        limit = request.page_size or 100
        since = request.since.ToDatetime(tzinfo=UTC)
        after_time, after_id = since, -1
        if request.page_token:
            state = self.tokens.decode(request, ChangesState)
            after_time, after_id = state.t, state.i

        async def fetch():
            async with self.stores.pool.acquire() as conn:
                return await conn.fetch(
                    "SELECT id, data, published, created_on, updated_on FROM learning_resource"
                    " WHERE updated_on >= $1 AND (updated_on, id) > ($2, $3)"
                    " ORDER BY updated_on, id LIMIT $4",
                    since,
                    after_time,
                    after_id,
                    limit,
                )

        rows = await within_budget(context, fetch(), "catalog")
        out = []
        for r in rows:
            doc = to_search_document(Resource.model_validate(r["data"]), r["id"], r["created_on"])
            doc["published"] = r["published"]
            changed = search_pb2.ChangedResource(
                resource=rq.resource_message(doc, request.view), published=r["published"]
            )
            changed.updated_on.FromDatetime(r["updated_on"])
            out.append(changed)
        response = search_pb2.ListChangedResourcesResponse(resources=out)
        if len(rows) == limit:
            last = rows[-1]
            response.next_page_token = self.tokens.encode(
                request, ChangesState(t=last["updated_on"], i=last["id"])
            )
        return response

    # -- StreamAnswer -----------------------------------------------------------------------

    @handles_stream_errors
    async def StreamAnswer(self, request, context):
        violations = []
        question = request.question.strip()
        if not question or len(question) > 2000:
            violations.append(("question", "1 to 2000 characters"))
        if not 0 <= request.context_size <= 20:
            violations.append(("context_size", "between 0 and 20"))
        try:
            filters = rq.resource_filters(request.filter)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            filters = {}
        if violations:
            raise InvalidArgument(violations)
        vectors = await self.vectors(context)
        vector = await encode(context, vectors.encoder, question)
        res = await within_budget(
            context,
            vectors.resources.search(vector, filters, limit=request.context_size or 5),
            "vector store",
        )
        documents = [h.document for h in res.hits]
        context_ids = [int(d["id"]) for d in documents]
        llm = self.llm or _llm_from_settings(self.stores)
        remaining = context.time_remaining()
        timeout = ANSWER_SECONDS if remaining is None else max(remaining - 0.05, 0.01)
        answer: list[str] = []
        started = time.monotonic()
        try:
            async for text in stream_completion(llm, build_messages(question, documents), timeout):
                answer.append(text)
                yield search_pb2.StreamAnswerResponse(text=text)
        except (asyncio.CancelledError, InvalidArgument):
            raise
        except Exception as exc:
            log.warning("answer.llm_failed", error=repr(exc))
            raise BackendUnavailable(
                "the language model is unavailable", "LLM_UNAVAILABLE"
            ) from exc
        full = "".join(answer)
        cited = cited_ids(full, context_ids)
        log.info(
            "answer.done",
            seconds=round(time.monotonic() - started, 3),
            cited=cited,
            chars=len(full),
        )
        yield search_pb2.StreamAnswerResponse(citations=search_pb2.Citations(resource_ids=cited))


def _llm_from_settings(stores: Stores) -> LLMConfig:
    s = stores.settings
    return LLMConfig(
        model=s.litellm_chat_model,
        api_base=s.litellm_api_base,
        api_key=s.litellm_api_key.get_secret_value() if s.litellm_api_key else None,
    )


def auth_from_settings(settings: Settings) -> AuthConfig | None:
    """Auth settings (GRPC_AUTH_*), on by default. Enabled without a JWKS, issuer or audience:
    refuse to start (fail closed) with the settings to set."""
    if not settings.grpc_auth_enabled:
        return None
    try:
        return AuthConfig(
            issuer=settings.grpc_auth_issuer,
            audience=settings.grpc_auth_audience,
            jwks_url=settings.grpc_auth_jwks_url,
            jwks_file=settings.grpc_auth_jwks_file,
        )
    except ValueError as exc:
        raise ValueError(
            f"gRPC auth is on (GRPC_AUTH_ENABLED) but {exc}: set GRPC_AUTH_ISSUER, "
            "GRPC_AUTH_AUDIENCE and GRPC_AUTH_JWKS_URL (or GRPC_AUTH_JWKS_FILE), "
            "or GRPC_AUTH_ENABLED=false for a trusted network (learn up --demo does)"
        ) from exc


@dataclass
class RunningServer:
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    backends: BackendHealth | None = None

    async def stop(self, grace: float = 5.0) -> None:
        """Health goes NOT_SERVING first so balancers drain, then in-flight RPCs get `grace`."""
        if self.backends:
            await self.backends.stop()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def backend_checks(
    stores: Stores, content: ContentStores | None, serving: VectorServing | None = None
) -> dict[str, Any]:
    """Health checks by role; the vector ones check the collections served (`serving`: the
    promoted encoder's, which after a change of encoder are not the configured ones)."""

    async def postgres() -> bool:
        async with stores.pool.acquire(timeout=2) as conn:
            return await conn.fetchval("SELECT 1") == 1

    async def vector() -> bool:
        return await (await serving.current()).resources.healthy()  # type: ignore[union-attr]

    async def content_vector() -> bool:
        return await (await serving.current()).content_files.healthy()  # type: ignore[union-attr]

    checks: dict[str, Any] = {
        "keyword": stores.keyword.healthy,
        "vector": vector if serving is not None else stores.vector.healthy,
    }
    if stores.pool is not None:
        checks["postgres"] = postgres
    if content is not None:
        checks["content_keyword"] = content.keyword.healthy
        checks["content_vector"] = content_vector if serving is not None else content.vector.healthy
    return checks


def engine_aliases(stores: Stores) -> dict[str, str]:
    """Health names by engine (`<service>/opensearch`, `/tantivy`, `/qdrant`) for the checks
    named by role, so "is OpenSearch reachable?" has a direct answer."""
    aliases = {"qdrant": "vector"}  # both vector stores (server and embedded) are Qdrant
    engine = getattr(stores.keyword, "engine", None)
    if engine:
        aliases[engine] = "keyword"
    return aliases


async def start_server(
    stores: Stores,
    address: str = "127.0.0.1:0",
    *,
    auth: AuthConfig | bool | None = True,
    content: ContentStores | None = None,
    llm: LLMConfig | None = None,
    health_interval: float = 5.0,
    max_concurrent_rpcs: int = 256,
    reuse_port: bool = False,
    page_token_secret: bytes | None = None,
) -> RunningServer:
    """Start the service. `auth=True` (default) takes GRPC_AUTH_* from settings; an AuthConfig
    turns auth on explicitly; None/False turns it off. `reuse_port`: other processes serve the
    same port (`processes.start_server_group`), which also hands every process one
    `page_token_secret` so a page token from one is honoured by the others."""
    settings = stores.settings
    auth_config = auth_from_settings(settings) if auth is True else (auth or None)
    secret = page_token_secret or token_secret(settings, auth_on=auth_config is not None)
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if auth_config is not None:
        interceptors.append(JwtAuthInterceptor(JwtVerifier(auth_config)))
    interceptors.append(RequestGuard())  # after auth: unauthenticated calls learn nothing more
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", 4 * 1024 * 1024),
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 20_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
            ("grpc.max_connection_age_ms", 30 * 60_000),
            ("grpc.max_connection_age_grace_ms", 30_000),
            *([("grpc.so_reuseport", 1)] if reuse_port else []),
        ],
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )
    if content is None and getattr(stores, "pool", None) is not None:
        content = content_stores(settings)
    servicer = SearchService(stores, secret, content=content, llm=llm)
    search_pb2_grpc.add_SearchServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    # Load the query encoder before serving: the default takes seconds (ONNX session, GloVe,
    # LSA fit) and would otherwise block the event loop inside the first vector query.
    # LiteLLM's encoder probes a remote endpoint: it stays lazy.
    if settings.qdrant_encoder != "litellm":
        try:
            await asyncio.to_thread(lambda: stores.encoder)
        except Exception as exc:  # vector queries will answer UNAVAILABLE; keyword ones still work
            log.warning("encoder.load_failed", error=repr(exc))
    try:  # and the promoted one, when it is another (a new encoder is still catching up)
        serving = await servicer.serving.current()
        log.info("vector_serving.encoder", serving=serving.encoder_id, configured=stores.encoder_id)
    except Exception as exc:  # re-read on the first vector query
        log.warning("vector_serving.load_failed", error=repr(exc))
    port = server.add_insecure_port(address)
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    backends = BackendHealth(
        health_servicer,
        SERVICE_NAME,
        backend_checks(stores, content, servicer.serving if content is not None else None),
        interval=health_interval,
        aliases=engine_aliases(stores),
    )
    await backends.start()
    log.info("grpc.started", port=port, auth=auth_config is not None)
    return RunningServer(server=server, health=health_servicer, port=port, backends=backends)
