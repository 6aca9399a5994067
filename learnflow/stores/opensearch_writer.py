"""The OpenSearch keyword index's write side: MIT Learn's index layout, bulk indexing and the
zero-downtime reindex (the read side, `OpenSearchKeywordIndex`, is in `opensearch.py`).

Layout (reference/mit-learn.md §4.1): one backing index per resource type,
``{prefix}_{type}_{uuid hex}``, behind the read/write alias ``{prefix}_{type}_default``; every
current backing index also carries the global alias ``{prefix}_all_default`` that searches read.
Content files are child documents (join ``resource_relations``, id ``cf_<id>``, routed by the
parent id) in the course and program indexes.

Reindex (§4.5, without MIT Learn's Celery fan-out): ``start_reindex`` creates new backing indexes
behind ``{prefix}_{type}_reindexing``; while that alias exists every live write goes to both the
current and the new index; the rebuild writes with ``op_type=create`` so a live write is never
overwritten by an older catalog read. ``finish_reindex`` checks the new index (document count
within a tolerance of the old one, mapping as expected) and then swaps the aliases in ONE
``update_aliases`` call; the old index keeps ``{prefix}_{type}_previous`` for ``rollback``.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from opensearchpy import AsyncOpenSearch, NotFoundError, RequestError

from learnflow.stores.opensearch_layout import (
    CONTENT_FILE_RELATION,
    CONTENT_FILE_TYPES,
    JOIN_FIELD,
    RESOURCE_TYPES,
    index_mappings,
    index_settings,
    indexed_resource,
    mapping_differences,
)

log = structlog.get_logger("learnflow.stores.opensearch")

# AWS/Elastic guidance (reference/performance-reliability.md §2): 5–15 MiB per bulk request, and
# some domains reject > 10 MiB. 8 MiB stays under every limit.
DEFAULT_MAX_CHUNK_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_CHUNK_ACTIONS = 1000


class ReindexError(RuntimeError):
    """A reindex could not start, or its new index failed the check before the swap."""


@dataclass
class BulkReport:
    requests: int = 0
    indexed: int = 0
    deleted: int = 0
    conflicts: int = 0  # op_type=create on an existing document (a live write won)
    not_found: int = 0  # deletes of documents that were not there
    largest_request_bytes: int = 0


@dataclass
class TypeStatus:
    resource_type: str
    current: str | None
    current_docs: int | None
    reindexing: str | None = None
    reindexing_docs: int | None = None
    previous: str | None = None


@dataclass
class SwapReport:
    swapped: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # type -> (old, new)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # type -> (old, new)
    deleted: list[str] = field(default_factory=list)  # older generations removed


def _action_lines(action: dict[str, Any], source: dict[str, Any] | None) -> bytes:
    head = json.dumps(action, separators=(",", ":"), default=str)
    if source is None:
        return (head + "\n").encode()
    body = json.dumps(source, separators=(",", ":"), default=str)
    return (head + "\n" + body + "\n").encode()


def bulk_chunks(
    actions: Iterable[tuple[dict[str, Any], dict[str, Any] | None]],
    max_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
    max_actions: int = DEFAULT_MAX_CHUNK_ACTIONS,
) -> Iterator[bytes]:
    """NDJSON bulk bodies of at most `max_bytes` (a single larger action goes alone)."""
    parts: list[bytes] = []
    size = 0
    for action, source in actions:
        line = _action_lines(action, source)
        if parts and (size + len(line) > max_bytes or len(parts) >= max_actions):
            yield b"".join(parts)
            parts, size = [], 0
        parts.append(line)
        size += len(line)
    if parts:
        yield b"".join(parts)


class OpenSearchWriter:
    """Index layout, writes and reindex of `OpenSearchKeywordIndex` (which adds the reads)."""

    def __init__(
        self,
        url: str,
        prefix: str = "learnflow",
        *,
        refresh: bool = False,
        shards: int = 1,
        replicas: int = 0,
        refresh_interval: str = "1s",
        max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
        max_chunk_actions: int = DEFAULT_MAX_CHUNK_ACTIONS,
        program_index_boost: bool = True,
        timeout: float = 30.0,
        client: AsyncOpenSearch | None = None,
    ) -> None:
        if not url and client is None:
            raise ValueError("OpenSearchKeywordIndex needs OPENSEARCH_URL")
        self.url = url
        self.prefix = prefix
        # refresh=True: every write is followed by a refresh (read-your-writes, for tests/CLI)
        self.refresh = refresh
        self.shards = shards
        self.replicas = replicas
        self.refresh_interval = refresh_interval
        self.max_chunk_bytes = max_chunk_bytes
        self.max_chunk_actions = max_chunk_actions
        self.program_index_boost = program_index_boost
        self.client = client or AsyncOpenSearch(hosts=[url], timeout=timeout)
        self._ready = False
        self._ready_lock = asyncio.Lock()
        self.last_bulk = BulkReport()

    # -- names ----------------------------------------------------------------------------

    def default_alias(self, resource_type: str) -> str:
        return f"{self.prefix}_{resource_type}_default"

    def reindexing_alias(self, resource_type: str) -> str:
        return f"{self.prefix}_{resource_type}_reindexing"

    def previous_alias(self, resource_type: str) -> str:
        return f"{self.prefix}_{resource_type}_previous"

    @property
    def global_alias(self) -> str:
        return f"{self.prefix}_all_default"

    def new_index_name(self, resource_type: str) -> str:
        return f"{self.prefix}_{resource_type}_{uuid.uuid4().hex}"

    def _types(self, types: Iterable[str] | None) -> list[str]:
        chosen = list(types) if types else list(RESOURCE_TYPES)
        unknown = [t for t in chosen if t not in RESOURCE_TYPES]
        if unknown:
            raise ValueError(f"unknown resource types: {unknown}")
        return chosen

    # -- index lifecycle --------------------------------------------------------------------

    async def _aliases(self, name: str) -> dict[str, list[str]]:
        """alias name -> backing indexes, for aliases matching `name` (wildcards allowed)."""
        try:
            res = await self.client.indices.get_alias(name=name)
        except NotFoundError:
            return {}
        out: dict[str, list[str]] = {}
        for index, body in res.items():
            for alias in body.get("aliases", {}):
                out.setdefault(alias, []).append(index)
        return out

    async def _create_index(self, name: str, resource_type: str, *, building: bool) -> None:
        # A rebuild loads with refresh off and no replicas (AWS/Elastic guidance), restored at
        # the check before the swap.
        settings = index_settings(
            self.shards,
            0 if building else self.replicas,
            "-1" if building else self.refresh_interval,
        )
        await self.client.indices.create(
            index=name, body={"settings": settings, "mappings": index_mappings(resource_type)}
        )

    async def ensure_indexes(self) -> None:
        """Create the backing index + aliases of every type that has none (idempotent)."""
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            existing = await self._aliases(f"{self.prefix}_*_default")
            for rtype in RESOURCE_TYPES:
                if existing.get(self.default_alias(rtype)):
                    continue
                # A fixed first name: two processes starting at once create the same index
                # (one gets resource_already_exists) instead of two indexes behind one alias.
                name = f"{self.prefix}_{rtype}_{uuid.uuid5(uuid.NAMESPACE_URL, f'{self.prefix}/{rtype}').hex}"
                try:
                    await self._create_index(name, rtype, building=False)
                except RequestError as exc:
                    if "resource_already_exists" not in str(exc.error):
                        raise
                await self.client.indices.update_aliases(
                    body={
                        "actions": [
                            {"add": {"index": name, "alias": self.default_alias(rtype)}},
                            {"add": {"index": name, "alias": self.global_alias}},
                        ]
                    }
                )
            self._ready = True

    async def drop_all(self) -> None:
        """Delete every index of this prefix (tests, `learn index` never calls it)."""
        res = await self.client.indices.get(index=f"{self.prefix}_*", ignore_unavailable=True)
        for name in res:
            if self.owns(name):
                await self.client.indices.delete(index=name, ignore_unavailable=True)
        self._ready = False

    def owns(self, index: str) -> bool:
        """Whether `index` is a backing index of this prefix (not of a longer prefix like it)."""
        rest = index.removeprefix(f"{self.prefix}_")
        return rest != index and any(
            re.fullmatch(rf"{t}_[0-9a-f]{{32}}", rest) for t in RESOURCE_TYPES
        )

    # -- writes ---------------------------------------------------------------------------

    async def _write_targets(self) -> dict[str, list[str]]:
        """type -> the aliases a live write goes to: current, plus the rebuild's when one runs."""
        await self.ensure_indexes()
        rebuilding = await self._aliases(f"{self.prefix}_*_reindexing")
        return {
            rtype: [self.default_alias(rtype)]
            + ([self.reindexing_alias(rtype)] if self.reindexing_alias(rtype) in rebuilding else [])
            for rtype in RESOURCE_TYPES
        }

    async def _bulk(
        self,
        actions: Iterable[tuple[dict[str, Any], dict[str, Any] | None]],
        *,
        tolerate_conflicts: bool = False,
    ) -> BulkReport:
        report = BulkReport()
        for body in bulk_chunks(actions, self.max_chunk_bytes, self.max_chunk_actions):
            report.requests += 1
            report.largest_request_bytes = max(report.largest_request_bytes, len(body))
            res = await self.client.bulk(body=body, refresh="true" if self.refresh else "false")
            failures = []
            for item in res["items"]:
                ((op, result),) = item.items()
                status = int(result.get("status", 500))
                if op == "delete":
                    if status == 404:
                        report.not_found += 1
                    elif status < 300:
                        report.deleted += 1
                    else:
                        failures.append(result)
                elif status < 300:
                    report.indexed += 1
                elif status == 409 and tolerate_conflicts:
                    report.conflicts += 1
                else:
                    failures.append(result)
            if failures:
                raise RuntimeError(f"bulk failed for {len(failures)} actions: {failures[:3]}")
        self.last_bulk = report
        return report

    async def upsert(self, documents: list[dict[str, Any]]) -> None:
        """Index published documents, deindex unpublished ones (and their content files)."""
        if not documents:
            return
        targets = await self._write_targets()
        now = datetime.now(UTC)
        gone = [int(d["id"]) for d in documents if d.get("published") is False]
        actions = [
            ({"index": {"_index": alias, "_id": str(doc["id"])}}, indexed_resource(doc, now))
            for doc in documents
            if doc.get("published") is not False
            for alias in targets[str(doc["resource_type"])]
        ]
        await self._bulk(actions)
        if gone:
            await self.delete(gone)

    async def delete(self, ids: list[int]) -> None:
        """Remove resources (by id, in whichever type index holds them) and their content files."""
        if not ids:
            return
        targets = await self._write_targets()
        actions = [
            ({"delete": {"_index": alias, "_id": str(int(i))}}, None)
            for aliases in targets.values()
            for alias in aliases
            for i in ids
        ]
        await self._bulk(actions)
        parents = [alias for t in CONTENT_FILE_TYPES for alias in targets[t]]
        # Children are found by search, which sees refreshed documents only: refresh first.
        await self.client.indices.refresh(index=",".join(parents))
        await self.client.delete_by_query(
            index=",".join(parents),
            body={
                "query": {
                    "bool": {
                        "filter": [
                            {"term": {JOIN_FIELD: CONTENT_FILE_RELATION}},
                            {"terms": {"resource_id": [int(i) for i in ids]}},
                        ]
                    }
                }
            },
            conflicts="proceed",
            refresh=True,
        )

    async def upsert_content_files(self, documents: list[dict[str, Any]]) -> BulkReport:
        """Index content files as children of their course/program; unpublished ones are removed.

        Documents come from `content_file_document(row)`. Files of other resource types are
        skipped (MIT Learn nests those in the resource document instead).
        """
        targets = await self._write_targets()
        actions: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for doc in documents:
            parent_type = str(doc.get("parent_resource_type") or "course")
            if parent_type not in CONTENT_FILE_TYPES:
                continue
            parent = str(int(doc["resource_id"]))
            for alias in targets[parent_type]:
                meta = {"_index": alias, "_id": f"cf_{int(doc['id'])}", "routing": parent}
                if doc.get("published") is False:
                    actions.append(({"delete": meta}, None))
                else:
                    body = {**doc, JOIN_FIELD: {"name": CONTENT_FILE_RELATION, "parent": parent}}
                    actions.append(({"index": meta}, body))
        return await self._bulk(actions)

    async def delete_content_files(
        self, ids: list[int], resource_ids: list[int] | None = None
    ) -> None:
        """Remove content files by id. With their resource ids (parallel list) the deletes are
        routed and real-time; without, they are found by a query after a refresh."""
        if not ids:
            return
        targets = await self._write_targets()
        aliases = [alias for t in CONTENT_FILE_TYPES for alias in targets[t]]
        if resource_ids is not None:
            if len(resource_ids) != len(ids):
                raise ValueError("resource_ids must parallel ids")
            await self._bulk(
                (
                    {"delete": {"_index": alias, "_id": f"cf_{int(i)}", "routing": str(int(r))}},
                    None,
                )
                for alias in aliases
                for i, r in zip(ids, resource_ids, strict=True)
            )
            return
        await self.client.indices.refresh(index=",".join(aliases))
        await self.client.delete_by_query(
            index=",".join(aliases),
            body={"query": {"ids": {"values": [f"cf_{int(i)}" for i in ids]}}},
            conflicts="proceed",
            refresh=True,
        )

    async def refresh_all(self) -> None:
        await self.ensure_indexes()
        await self.client.indices.refresh(index=f"{self.prefix}_*")

    # -- zero-downtime reindex --------------------------------------------------------------

    async def status(self) -> list[TypeStatus]:
        await self.ensure_indexes()
        aliases = await self._aliases(f"{self.prefix}_*")
        out = []
        for rtype in RESOURCE_TYPES:
            current = (aliases.get(self.default_alias(rtype)) or [None])[0]
            building = (aliases.get(self.reindexing_alias(rtype)) or [None])[0]
            previous = (aliases.get(self.previous_alias(rtype)) or [None])[0]
            out.append(
                TypeStatus(
                    resource_type=rtype,
                    current=current,
                    current_docs=await self._doc_count(current) if current else None,
                    reindexing=building,
                    reindexing_docs=await self._doc_count(building) if building else None,
                    previous=previous,
                )
            )
        return out

    async def _doc_count(self, index: str) -> int:
        # _count sees refreshed documents; a building index has refresh off, so refresh it.
        await self.client.indices.refresh(index=index)
        return int((await self.client.count(index=index))["count"])

    async def start_reindex(self, types: Iterable[str] | None = None) -> dict[str, str]:
        """New backing indexes behind `_reindexing` aliases; live writes go to both from now."""
        chosen = self._types(types)
        await self.ensure_indexes()
        running = await self._aliases(f"{self.prefix}_*_reindexing")
        busy = [t for t in chosen if self.reindexing_alias(t) in running]
        if busy:
            raise ReindexError(f"a reindex is already running for {busy} (finish or abort it)")
        created: dict[str, str] = {}
        for rtype in chosen:
            name = self.new_index_name(rtype)
            await self._create_index(name, rtype, building=True)
            await self.client.indices.put_alias(index=name, name=self.reindexing_alias(rtype))
            created[rtype] = name
        log.info("opensearch.reindex.started", indexes=created)
        return created

    async def write_rebuild(self, documents: list[dict[str, Any]]) -> BulkReport:
        """Catalog documents into the new indexes only, never over a live write (op_type=create)."""
        running = await self._aliases(f"{self.prefix}_*_reindexing")
        now = datetime.now(UTC)
        actions = [
            (
                {"create": {"_index": self.reindexing_alias(t), "_id": str(doc["id"])}},
                indexed_resource(doc, now),
            )
            for doc in documents
            if doc.get("published") is not False
            and self.reindexing_alias(t := str(doc["resource_type"])) in running
        ]
        return await self._bulk(actions, tolerate_conflicts=True)

    async def write_rebuild_content_files(self, documents: list[dict[str, Any]]) -> BulkReport:
        running = await self._aliases(f"{self.prefix}_*_reindexing")
        actions = []
        for doc in documents:
            parent_type = str(doc.get("parent_resource_type") or "course")
            alias = self.reindexing_alias(parent_type)
            if parent_type not in CONTENT_FILE_TYPES or alias not in running:
                continue
            if doc.get("published") is False:
                continue
            parent = str(int(doc["resource_id"]))
            meta = {"_index": alias, "_id": f"cf_{int(doc['id'])}", "routing": parent}
            body = {**doc, JOIN_FIELD: {"name": CONTENT_FILE_RELATION, "parent": parent}}
            actions.append(({"create": meta}, body))
        return await self._bulk(actions, tolerate_conflicts=True)

    async def check_rebuild(
        self, resource_type: str, new_index: str, old_index: str | None, tolerance: float
    ) -> tuple[int, int, list[str]]:
        """(old count, new count, problems) for a built index; no problems = safe to swap."""
        problems = []
        new_count = await self._doc_count(new_index)
        old_count = await self._doc_count(old_index) if old_index else 0
        if old_count and abs(new_count - old_count) > tolerance * old_count:
            problems.append(
                f"{resource_type}: {new_count} documents in {new_index}, {old_count} in "
                f"{old_index} (tolerance {tolerance:.0%})"
            )
        mapping = (await self.client.indices.get_mapping(index=new_index))[new_index]["mappings"]
        problems += [
            f"{resource_type} mapping: {d}" for d in mapping_differences(resource_type, mapping)
        ]
        return old_count, new_count, problems

    async def finish_reindex(
        self, types: Iterable[str] | None = None, tolerance: float = 0.05, keep_previous: int = 1
    ) -> SwapReport:
        """Check every rebuilt index, then swap all aliases in one atomic `update_aliases`."""
        aliases = await self._aliases(f"{self.prefix}_*")
        chosen = [t for t in self._types(types) if aliases.get(self.reindexing_alias(t))]
        if not chosen:
            raise ReindexError("no reindex is running")
        report = SwapReport()
        problems: list[str] = []
        for rtype in chosen:
            (new,) = aliases[self.reindexing_alias(rtype)]
            old = (aliases.get(self.default_alias(rtype)) or [None])[0]
            await self.client.indices.put_settings(
                index=new,
                body={
                    "index": {
                        "refresh_interval": self.refresh_interval,
                        "number_of_replicas": self.replicas,
                    }
                },
            )
            old_count, new_count, found = await self.check_rebuild(rtype, new, old, tolerance)
            problems += found
            report.swapped[rtype] = (old, new)
            report.counts[rtype] = (old_count, new_count)
        if problems:
            raise ReindexError("; ".join(problems))
        actions: list[dict[str, Any]] = []
        stale: list[str] = []
        for rtype, (old, new) in report.swapped.items():
            actions += [
                {"add": {"index": new, "alias": self.default_alias(rtype)}},
                {"add": {"index": new, "alias": self.global_alias}},
                {"remove": {"index": new, "alias": self.reindexing_alias(rtype)}},
            ]
            if old:
                actions += [
                    {"remove": {"index": old, "alias": self.default_alias(rtype)}},
                    {"remove": {"index": old, "alias": self.global_alias}},
                    {"add": {"index": old, "alias": self.previous_alias(rtype)}},
                ]
            for older in aliases.get(self.previous_alias(rtype), []):
                actions.append({"remove": {"index": older, "alias": self.previous_alias(rtype)}})
                stale.append(older)
        # One call: searches see either every old index or every new one, never a gap.
        await self.client.indices.update_aliases(body={"actions": actions})
        if keep_previous < 2:
            for name in stale:
                await self.client.indices.delete(index=name, ignore_unavailable=True)
                report.deleted.append(name)
        log.info("opensearch.reindex.swapped", swapped=report.swapped, counts=report.counts)
        return report

    async def abort_reindex(self, types: Iterable[str] | None = None) -> list[str]:
        """Delete the indexes of a running rebuild; the current indexes are untouched."""
        aliases = await self._aliases(f"{self.prefix}_*_reindexing")
        deleted = []
        for rtype in self._types(types):
            for name in aliases.get(self.reindexing_alias(rtype), []):
                await self.client.indices.delete(index=name, ignore_unavailable=True)
                deleted.append(name)
        return deleted

    async def rollback(self, types: Iterable[str] | None = None) -> dict[str, tuple[str, str]]:
        """Point each type's aliases back at its previous index (atomically); the index that was
        current becomes the previous one, so a second rollback rolls forward again."""
        aliases = await self._aliases(f"{self.prefix}_*")
        actions: list[dict[str, Any]] = []
        swapped: dict[str, tuple[str, str]] = {}
        for rtype in self._types(types):
            previous = aliases.get(self.previous_alias(rtype))
            current = aliases.get(self.default_alias(rtype))
            if not previous or not current:
                continue
            prev, cur = previous[0], current[0]
            actions += [
                {"add": {"index": prev, "alias": self.default_alias(rtype)}},
                {"add": {"index": prev, "alias": self.global_alias}},
                {"remove": {"index": prev, "alias": self.previous_alias(rtype)}},
                {"remove": {"index": cur, "alias": self.default_alias(rtype)}},
                {"remove": {"index": cur, "alias": self.global_alias}},
                {"add": {"index": cur, "alias": self.previous_alias(rtype)}},
            ]
            swapped[rtype] = (cur, prev)
        if not actions:
            raise ReindexError("nothing to roll back to (no previous index)")
        await self.client.indices.update_aliases(body={"actions": actions})
        log.info("opensearch.reindex.rolled_back", swapped=swapped)
        return swapped

    async def rebuild(
        self,
        documents: AsyncIterable[list[dict[str, Any]]],
        content_files: AsyncIterable[list[dict[str, Any]]] | None = None,
        types: Iterable[str] | None = None,
        tolerance: float = 0.05,
    ) -> SwapReport:
        """start → write every batch → check → swap; on any failure the new indexes are deleted."""
        chosen = self._types(types)
        await self.start_reindex(chosen)
        try:
            async for batch in documents:
                await self.write_rebuild(batch)
            if content_files is not None:
                async for batch in content_files:
                    await self.write_rebuild_content_files(batch)
            return await self.finish_reindex(chosen, tolerance=tolerance)
        except BaseException:
            await self.abort_reindex(chosen)
            raise
