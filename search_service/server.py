"""The gRPC search service (`learn.search.v1.SearchService`) on grpc.aio, with health and reflection.

Keyword mode asks the keyword index, vector mode the vector store, hybrid fuses both with
reciprocal rank fusion (k=60). Bad input is INVALID_ARGUMENT with `google.rpc.BadRequest` field
violations, never a stack trace.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

import grpc
import structlog
from google.protobuf import struct_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from learnflow.search_doc import FILTER_FIELDS
from learnflow.stores import Stores
from learnflow.stores.keyword import SORT_FIELDS, KeywordQuery
from search_service.pb import search_pb2, search_pb2_grpc

log = structlog.get_logger(__name__)

SERVICE_NAME = search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 10
MAX_OFFSET = 10_000
RRF_K = 60
_REPEATED_FILTERS = [
    "resource_type", "offered_by", "platform", "topic", "ocw_topic", "department", "level",
    "certification_type", "delivery", "resource_type_group", "resource_category", "course_feature",
]  # fmt: skip
_BOOL_FILTERS = ["certification", "professional", "free"]


class InvalidArgument(Exception):
    def __init__(self, violations: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {d}" for f, d in violations))
        self.violations = violations


async def abort_invalid(context: grpc.aio.ServicerContext, exc: InvalidArgument) -> None:
    detail = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
            for f, d in exc.violations
        ]
    )
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=str(exc))
    status.details.add().Pack(detail)
    await context.abort_with_status(rpc_status.to_status(status))


@dataclass
class PageTokens:
    """Opaque, tamper-evident page tokens bound to the request's parameters."""

    secret: bytes

    @staticmethod
    def fingerprint(req: search_pb2.SearchResourcesRequest) -> str:
        copy = search_pb2.SearchResourcesRequest()
        copy.CopyFrom(req)
        copy.page_token = ""
        copy.offset = 0
        copy.page_size = 0
        return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()[:32]

    def encode(self, req: search_pb2.SearchResourcesRequest, offset: int) -> str:
        body = json.dumps({"o": offset, "f": self.fingerprint(req)}, separators=(",", ":")).encode()
        mac = hmac.new(self.secret, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")

    def decode(self, req: search_pb2.SearchResourcesRequest) -> int:
        try:
            raw = base64.urlsafe_b64decode(req.page_token + "=" * (-len(req.page_token) % 4))
            mac, body = raw[:16], raw[16:]
            if not hmac.compare_digest(
                mac, hmac.new(self.secret, body, hashlib.sha256).digest()[:16]
            ):
                raise ValueError("signature")
            data = json.loads(body)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument([("page_token", "malformed or tampered page token")]) from exc
        if data.get("f") != self.fingerprint(req):
            raise InvalidArgument(
                [("page_token", "page token was issued for different parameters")]
            )
        return int(data["o"])


def _filters(req: search_pb2.SearchResourcesRequest) -> dict[str, list[str]]:
    f = req.filter
    out: dict[str, list[str]] = {}
    for name in _REPEATED_FILTERS:
        values = [v for v in getattr(f, name) if v]
        if values:
            out[name] = values
    for name in _BOOL_FILTERS:
        if f.HasField(name):
            out[name] = ["true" if getattr(f, name) else "false"]
    if f.id:
        out["id"] = [str(i) for i in f.id]
    return out


def _validate(req: search_pb2.SearchResourcesRequest) -> None:
    violations = []
    if req.page_size < 0 or req.page_size > MAX_PAGE_SIZE:
        violations.append(("page_size", f"must be between 0 and {MAX_PAGE_SIZE}"))
    if req.offset < 0 or req.offset > MAX_OFFSET:
        violations.append(("offset", f"must be between 0 and {MAX_OFFSET}"))
    if len(req.query) > 1000:
        violations.append(("query", "at most 1000 characters"))
    for facet in req.facets:
        if facet not in FILTER_FIELDS or facet == "id":
            violations.append(("facets", f"unknown facet {facet!r}"))
    if req.sort and req.sort.lstrip("-") not in SORT_FIELDS:
        violations.append(
            ("sort", f"unknown sort {req.sort!r}; one of {', '.join(sorted(SORT_FIELDS))}")
        )
    if (
        req.mode in (search_pb2.SEARCH_MODE_VECTOR, search_pb2.SEARCH_MODE_HYBRID)
        and not req.query.strip()
    ):
        violations.append(("query", "vector and hybrid search need query text"))
    if violations:
        raise InvalidArgument(violations)


def _resource(doc: dict, view: int) -> search_pb2.LearningResource:
    msg = search_pb2.LearningResource(
        id=int(doc["id"]),
        readable_id=doc.get("readable_id") or "",
        resource_type=doc.get("resource_type") or "",
        title=doc.get("title") or "",
        description=doc.get("description") or "",
        url=doc.get("url") or "",
        platform=(doc.get("platform") or {}).get("code", ""),
        offered_by=(doc.get("offered_by") or {}).get("code", ""),
        topics=[t["name"] for t in doc.get("topics", [])],
        free=bool(doc.get("free")),
        certification=bool(doc.get("certification")),
    )
    if view == search_pb2.RESOURCE_VIEW_FULL:
        s = struct_pb2.Struct()
        s.update(json.loads(json.dumps(doc, default=str)))
        msg.document.CopyFrom(s)
    return msg


def rrf(
    rankings: list[list[tuple[int, dict]]], weights: list[float], k: int = RRF_K
) -> list[tuple[int, float, dict]]:
    """Reciprocal rank fusion: score(d) = Σ w_i / (k + rank_i(d))."""
    scores: dict[int, float] = {}
    docs: dict[int, dict] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, (doc_id, doc) in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
            docs.setdefault(doc_id, doc)
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(i, s, docs[i]) for i, s in ordered]


class SearchService(search_pb2_grpc.SearchServiceServicer):
    def __init__(self, stores: Stores, token_secret: bytes = b"learnflow-page-tokens"):
        self.stores = stores
        self.tokens = PageTokens(token_secret)

    async def SearchResources(self, request, context):
        try:
            _validate(request)
            offset = self.tokens.decode(request) if request.page_token else request.offset
        except InvalidArgument as exc:
            await abort_invalid(context, exc)
            return None
        limit = request.page_size or DEFAULT_PAGE_SIZE
        filters = _filters(request)
        mode = request.mode or search_pb2.SEARCH_MODE_KEYWORD
        if mode == search_pb2.SEARCH_MODE_KEYWORD:
            res = await self.stores.keyword.search(
                KeywordQuery(
                    text=request.query,
                    filters=filters,
                    facets=list(request.facets),
                    sort=request.sort or None,
                    offset=offset,
                    limit=limit,
                )
            )
            total, hits, facets = (
                res.total,
                [(h.id, h.score, h.document) for h in res.hits],
                res.facets,
            )
        elif mode == search_pb2.SEARCH_MODE_VECTOR:
            vector = await asyncio.to_thread(self.stores.encoder.encode, [request.query])
            vres = await self.stores.vector.search(vector[0], filters, limit=limit, offset=offset)
            total, hits, facets = vres.total, [(h.id, h.score, h.document) for h in vres.hits], {}
        else:
            depth = min(offset + limit, MAX_OFFSET) * 3
            kw_task = self.stores.keyword.search(
                KeywordQuery(
                    text=request.query,
                    filters=filters,
                    facets=list(request.facets),
                    limit=depth,
                    search_mode="best_fields",
                )
            )
            vector = await asyncio.to_thread(self.stores.encoder.encode, [request.query])
            kres, vres = await asyncio.gather(
                kw_task, self.stores.vector.search(vector[0], filters, limit=depth)
            )
            fused = rrf(
                [[(h.id, h.document) for h in kres.hits], [(h.id, h.document) for h in vres.hits]],
                [1.0, 1.0],
            )
            total = len(fused)
            hits = fused[offset : offset + limit]
            facets = kres.facets
        response = search_pb2.SearchResourcesResponse(
            results=[
                search_pb2.SearchResult(resource=_resource(doc, request.view), score=score)
                for _id, score, doc in hits
            ],
            total=total,
            facets=[
                search_pb2.Facet(
                    name=name,
                    buckets=[search_pb2.FacetBucket(value=v, count=c) for v, c in buckets],
                )
                for name, buckets in facets.items()
            ],
        )
        if offset + limit < min(total, MAX_OFFSET):
            response.next_page_token = self.tokens.encode(request, offset + limit)
        return response


@dataclass
class RunningServer:
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int

    async def stop(self, grace: float = 5.0) -> None:
        """Health goes NOT_SERVING first so balancers drain, then in-flight RPCs get `grace`."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def start_server(stores: Stores, address: str = "127.0.0.1:0") -> RunningServer:
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 4 * 1024 * 1024),
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
        ],
        maximum_concurrent_rpcs=256,
    )
    search_pb2_grpc.add_SearchServiceServicer_to_server(SearchService(stores), server)
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
    port = server.add_insecure_port(address)
    await server.start()
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server=server, health=health_servicer, port=port)
