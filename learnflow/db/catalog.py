"""The catalog store: idempotent upserts on natural keys, the prune guard, and change feeds.

Bulk path (reference/performance-reliability.md §4): COPY a batch into a temporary staging table,
then one `INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE content_hash IS DISTINCT FROM …`, so a
row whose content did not change is not rewritten (no new tuple, updated_on unchanged). The rows
come ready-made from the transform activity (`resource_rows`: JSON values, data text, content
hash), so the load does no model work; the changed resources' runs and relationships go through
staging tables too (one statement each, not one per row).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
from pydantic_core import to_json

from learnflow.contracts import PruneResult, UpsertResult
from learnflow.db.catalog_state import ChangeFeeds, PageState, RowsLoaded, StoredResource
from learnflow.models import FeedItem, Quarantined, Resource, ViewEvent
from learnflow.reference import ReferenceData

__all__ = ["CatalogStore", "RowsLoaded", "StoredResource", "create_pool", "resource_rows"]


async def create_pool(dsn: str, **kwargs: Any) -> asyncpg.Pool:
    async def _init(conn: asyncpg.Connection) -> None:
        await conn.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )

    kwargs.setdefault("min_size", 1)
    kwargs.setdefault("max_size", 10)
    return await asyncpg.create_pool(dsn, init=_init, **kwargs)


_STAGE_COLUMNS = (
    "platform", "readable_id", "resource_type", "etl_source", "offered_by", "title", "url",
    "published", "test_mode", "last_modified", "data", "content_hash",
)  # fmt: skip


# A row's staging columns as one tuple, built in C: the event loop builds them (~1.1 µs a row
# by a generator, 0.3 this way).
_stage_record = operator.itemgetter(*_STAGE_COLUMNS)


def resource_row(resource: Resource) -> dict[str, Any]:
    """A resource as the loader stores it: plain JSON values (a batch blob carries them), the
    `data` text and the content hash (`Resource.stored_form`), runs and relationships as flat
    tuples."""
    data, blob, content_hash = resource.stored_form()
    return {
        "platform": data["platform"],
        "readable_id": data["readable_id"],
        "resource_type": data["resource_type"],
        "etl_source": data["etl_source"],
        "offered_by": data["offered_by"],
        "title": data["title"],
        "url": data["url"],
        "published": data["published"],
        "test_mode": data["test_mode"],
        "last_modified": data["last_modified"],
        "data": blob,
        "content_hash": content_hash,
        "runs": [
            (
                run["run_id"],
                run["published"],
                run["start_date"],
                run["end_date"],
                _run_json(run),
            )
            for run in data["runs"]
        ],
        "relationships": [
            (
                rel["child"]["platform"],
                rel["child"]["readable_id"],
                rel["child"]["resource_type"],
                rel["relation_type"],
                rel["position"],
            )
            for rel in data["relationships"]
        ],
    }


def _run_json(run: dict[str, Any]) -> str:
    """A run's JSON values as its jsonb text (only the value counts): orjson, ~2.5× pydantic-
    core's serializer on a run (which is 3× json.dumps); orjson refuses integers beyond 64 bits
    (a raw year, say), which pydantic-core writes."""
    try:
        return orjson.dumps(run).decode()
    except orjson.JSONEncodeError:
        return to_json(run).decode()


def resource_rows(resources: Sequence[Resource]) -> list[dict[str, Any]]:
    return [resource_row(r) for r in resources]


# A run that saw at least this many resources refreshes the planner statistics after its prune.
ANALYZE_AFTER_ROWS = 5000


class CatalogStore(PageState, ChangeFeeds):
    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    # -- reference data -------------------------------------------------------------------

    async def load_reference_data(self, ref: ReferenceData) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO platform (code, name, url, is_edx, has_content_files) VALUES ($1,$2,$3,$4,$5)"
                " ON CONFLICT (code) DO UPDATE SET name=EXCLUDED.name, url=EXCLUDED.url",
                [
                    (
                        c,
                        p.get("name") or c,
                        p.get("url"),
                        bool(p.get("is_edx")),
                        bool(p.get("has_content_files")),
                    )
                    for c, p in ref.platforms.items()
                ],
            )
            await conn.executemany(
                "INSERT INTO offeror (code, name, professional) VALUES ($1,$2,$3)"
                " ON CONFLICT (code) DO UPDATE SET name=EXCLUDED.name, professional=EXCLUDED.professional",
                [(c, o["name"], bool(o.get("professional"))) for c, o in ref.offerors.items()],
            )
            await conn.executemany(
                "INSERT INTO department (department_id, name) VALUES ($1,$2)"
                " ON CONFLICT (department_id) DO UPDATE SET name=EXCLUDED.name",
                list(ref.departments.items()),
            )
            await conn.executemany(
                "INSERT INTO topic (name, parent, topic_uuid) VALUES ($1,$2,$3)"
                " ON CONFLICT (name) DO UPDATE SET parent=EXCLUDED.parent, topic_uuid=EXCLUDED.topic_uuid",
                [(t["name"], t["parent"], t.get("id")) for t in ref.topics.values()],
            )
            await conn.executemany(
                "INSERT INTO topic_mapping (offeror, source_name, topic) VALUES ($1,$2,$3)"
                " ON CONFLICT DO NOTHING",
                [
                    (o, name, topic)
                    for o, walk in ref.crosswalk.items()
                    for name, topics in walk.items()
                    for topic in topics
                ],
            )

    # -- resources ------------------------------------------------------------------------

    async def upsert_resources(self, run_id: str, resources: Sequence[Resource]) -> UpsertResult:
        """Upsert resources with their runs and relationships; record them as seen by run_id."""
        return (await self.upsert_resource_rows(run_id, resource_rows(resources))).result

    async def upsert_resource_rows(self, run_id: str, rows: Sequence[dict[str, Any]]) -> RowsLoaded:
        """Upsert DB-ready rows (`resource_rows`, made where the models are, in the transform):
        COPY into a staging table, one INSERT … ON CONFLICT … WHERE hash differs; then the runs
        and relationships of the changed resources, set-based. Returns the counts and every
        row's (id, content_hash) as stored, for the page-skip state."""
        loaded = RowsLoaded(UpsertResult())
        if not rows:
            return loaded
        # The last occurrence of a natural key in a batch wins (a feed may repeat an item).
        unique: dict[tuple[str, str, str], dict[str, Any]] = {}
        for row in rows:
            unique[(row["platform"], row["readable_id"], row["resource_type"])] = row
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "CREATE TEMP TABLE stage_resource (platform text, readable_id text,"
                " resource_type text, etl_source text, offered_by text, title text, url text,"
                " published boolean, test_mode boolean, last_modified text, data text,"
                " content_hash text) ON COMMIT DROP;"
                # read once, then dropped: not worth compressing (pglz on every 2 kB+ row was
                # half of what the stage cost Postgres)
                " ALTER TABLE stage_resource ALTER COLUMN data SET STORAGE EXTERNAL"
            )
            await conn.copy_records_to_table(
                "stage_resource",
                records=[_stage_record(row) for row in unique.values()],
                columns=_STAGE_COLUMNS,
            )
            changed = await conn.fetch(
                """
                INSERT INTO learning_resource AS lr (platform, readable_id, resource_type, etl_source,
                    offered_by, title, url, published, test_mode, last_modified, data, content_hash)
                SELECT platform, readable_id, resource_type, etl_source, offered_by, title, url,
                    published, test_mode, last_modified::timestamptz, data::jsonb, content_hash
                FROM stage_resource
                ON CONFLICT (platform, readable_id, resource_type) DO UPDATE SET
                    etl_source = EXCLUDED.etl_source, offered_by = EXCLUDED.offered_by,
                    title = EXCLUDED.title, url = EXCLUDED.url, published = EXCLUDED.published,
                    test_mode = EXCLUDED.test_mode, last_modified = EXCLUDED.last_modified,
                    data = EXCLUDED.data, content_hash = EXCLUDED.content_hash, updated_on = now()
                WHERE lr.content_hash IS DISTINCT FROM EXCLUDED.content_hash
                RETURNING id, platform, readable_id, resource_type, (xmax = 0) AS inserted
                """
            )
            # Every row as stored, and whether the keyword index lags it (new, changed, or an
            # earlier attempt that wrote the row but not the index): `load_page` indexes those.
            stored = await conn.fetch(
                "SELECT lr.id, lr.content_hash, lr.created_on, lr.published, lr.platform,"
                " lr.readable_id, lr.resource_type, (x.indexed_hash IS DISTINCT FROM"
                " lr.content_hash AND (lr.published OR x.resource_id IS NOT NULL)) AS index_stale"
                " FROM learning_resource lr"
                " JOIN stage_resource s USING (platform, readable_id, resource_type)"
                " LEFT JOIN search_index_state x ON x.resource_id = lr.id ORDER BY lr.id"
            )
            loaded.ids = [r["id"] for r in stored]
            loaded.hashes = [r["content_hash"] for r in stored]
            loaded.index_stale = [r for r in stored if r["index_stale"]]
            await conn.execute(
                "INSERT INTO etl_seen (run_id, kind, item_id) SELECT $1, 'resource', unnest($2::bigint[])"
                " ON CONFLICT DO NOTHING",
                run_id,
                loaded.ids,
            )
            result = loaded.result
            result.inserted = sum(1 for r in changed if r["inserted"])
            result.updated = len(changed) - result.inserted
            result.unchanged = len(unique) - len(changed)
            items = [
                (r["id"], unique[(r["platform"], r["readable_id"], r["resource_type"])])
                for r in changed
            ]
            await self._write_runs(conn, items)
            await self._write_relationships(conn, items)
        return loaded

    async def _write_runs(self, conn: asyncpg.Connection, items: list[tuple[int, dict]]) -> None:
        """Runs of changed resources: upsert those in the payload, unpublish the missing ones."""
        if not items:
            return
        await conn.execute(
            "CREATE TEMP TABLE stage_run (resource_id bigint, ord integer, run_id text,"
            " published boolean, start_date text, end_date text, data text) ON COMMIT DROP;"
            " ALTER TABLE stage_run ALTER COLUMN data SET STORAGE EXTERNAL"  # as stage_resource
        )
        await conn.copy_records_to_table(
            "stage_run",
            records=[
                (rid, n, *run)
                for n, (rid, run) in enumerate(
                    (rid, run) for rid, row in items for run in row["runs"]
                )
            ],
            columns=("resource_id", "ord", "run_id", "published", "start_date", "end_date", "data"),
        )
        # A run listed twice under one resource: the last one wins, as a row-by-row upsert did.
        await conn.execute(
            """
            INSERT INTO learning_resource_run (resource_id, run_id, published, start_date, end_date, data)
            SELECT DISTINCT ON (resource_id, run_id) resource_id, run_id, published,
                start_date::timestamptz, end_date::timestamptz, data::jsonb
            FROM stage_run ORDER BY resource_id, run_id, ord DESC
            ON CONFLICT (resource_id, run_id) DO UPDATE SET published = EXCLUDED.published,
                start_date = EXCLUDED.start_date, end_date = EXCLUDED.end_date,
                data = EXCLUDED.data, updated_on = now()
            WHERE learning_resource_run.data IS DISTINCT FROM EXCLUDED.data
                OR learning_resource_run.published IS DISTINCT FROM EXCLUDED.published
            """
        )
        await conn.execute(
            "UPDATE learning_resource_run r SET published = false, updated_on = now()"
            " WHERE r.resource_id = ANY($1::bigint[]) AND r.published AND NOT EXISTS"
            " (SELECT 1 FROM stage_run s WHERE s.resource_id = r.resource_id AND s.run_id = r.run_id)",
            [rid for rid, _ in items],
        )

    async def _write_relationships(
        self, conn: asyncpg.Connection, items: list[tuple[int, dict]]
    ) -> None:
        if not items:
            return
        await conn.execute(
            "DELETE FROM learning_resource_relationship WHERE parent_id = ANY($1::bigint[])",
            [rid for rid, _ in items],
        )
        rels = [(rid, n, *rel) for rid, row in items for n, rel in enumerate(row["relationships"])]
        if not rels:
            return
        await conn.execute(
            "CREATE TEMP TABLE stage_relationship (parent_id bigint, ord integer, platform text,"
            " readable_id text, resource_type text, relation_type text, position integer)"
            " ON COMMIT DROP"
        )
        await conn.copy_records_to_table("stage_relationship", records=rels)
        # fetch-only children: a child the catalog does not have is not linked (MIT Learn).
        await conn.execute(
            """
            INSERT INTO learning_resource_relationship (parent_id, child_id, relation_type, position)
            SELECT s.parent_id, lr.id, s.relation_type, s.position
            FROM stage_relationship s
            JOIN learning_resource lr USING (platform, readable_id, resource_type)
            ORDER BY s.parent_id, s.ord
            ON CONFLICT DO NOTHING
            """
        )

    # -- feed items -----------------------------------------------------------------------

    async def upsert_feed_items(self, run_id: str, items: Sequence[FeedItem]) -> UpsertResult:
        result = UpsertResult()
        if not items:
            return result
        unique = {i.guid: i for i in items}
        async with self.pool.acquire() as conn, conn.transaction():
            source_ids: dict[tuple[str, str], int] = {}
            for item in unique.values():
                key = (str(item.feed_type), item.source.url)
                if key not in source_ids:
                    source_ids[key] = await conn.fetchval(
                        "INSERT INTO feed_source (feed_type, url, title, data) VALUES ($1,$2,$3,$4::text::jsonb)"
                        " ON CONFLICT (feed_type, url) DO UPDATE SET title = EXCLUDED.title, data = EXCLUDED.data"
                        " RETURNING id",
                        key[0],
                        key[1],
                        item.source.title,
                        json.dumps(item.source.model_dump(mode="json")),
                    )
            changed = await conn.fetch(
                """
                INSERT INTO feed_item AS fi (guid, source_id, etl_source, feed_type, title, url, data, content_hash)
                SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                    $6::text[], $7::text[]::jsonb[], $8::text[])
                ON CONFLICT (guid) DO UPDATE SET source_id = EXCLUDED.source_id, title = EXCLUDED.title,
                    url = EXCLUDED.url, data = EXCLUDED.data, content_hash = EXCLUDED.content_hash,
                    updated_on = now()
                WHERE fi.content_hash IS DISTINCT FROM EXCLUDED.content_hash
                RETURNING id, (xmax = 0) AS inserted
                """,
                [i.guid for i in unique.values()],
                [source_ids[(str(i.feed_type), i.source.url)] for i in unique.values()],
                [i.etl_source for i in unique.values()],
                [str(i.feed_type) for i in unique.values()],
                [i.title for i in unique.values()],
                [i.url for i in unique.values()],
                [json.dumps(i.model_dump(mode="json")) for i in unique.values()],
                [i.content_hash() for i in unique.values()],
            )
            await conn.execute(
                "INSERT INTO etl_seen (run_id, kind, item_id)"
                " SELECT $1, 'feed_item', id FROM feed_item WHERE guid = ANY($2::text[]) ON CONFLICT DO NOTHING",
                run_id,
                list(unique),
            )
        result.inserted = sum(1 for r in changed if r["inserted"])
        result.updated = len(changed) - result.inserted
        result.unchanged = len(unique) - len(changed)
        return result

    async def record_view_events(self, events: Sequence[ViewEvent]) -> int:
        if not events:
            return 0
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                """
                INSERT INTO view_event (event_uuid, resource_id, event_date)
                SELECT u, r, d FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS t(u, r, d)
                WHERE EXISTS (SELECT 1 FROM learning_resource WHERE id = r)
                ON CONFLICT (event_uuid) DO NOTHING
                """,
                [e.event_uuid for e in events],
                [e.resource_id for e in events],
                [e.event_date for e in events],
            )
            await conn.execute(
                "UPDATE learning_resource lr SET view_count = c.n FROM"
                " (SELECT resource_id, count(*) AS n FROM view_event WHERE resource_id = ANY($1::bigint[])"
                "  GROUP BY resource_id) c WHERE lr.id = c.resource_id AND lr.view_count IS DISTINCT FROM c.n",
                list({e.resource_id for e in events}),
            )
        return int(status.split()[-1])

    async def quarantine(self, run_id: str, items: Sequence[Quarantined]) -> int:
        """Store unreadable items; one whose key names a published resource of its source keeps
        that resource's last good version: it counts as seen, so the prune leaves it alone."""
        if not items:
            return 0
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO quarantine (source, run_id, item_key, reason, raw) VALUES ($1,$2,$3,$4,$5)",
                [(q.source, run_id, q.item_key, q.reason, q.raw) for q in items],
            )
            await conn.execute(
                "INSERT INTO etl_seen (run_id, kind, item_id)"
                " SELECT $1, 'resource', lr.id FROM learning_resource lr"
                " JOIN unnest($2::text[], $3::text[]) AS q(source, item_key)"
                "   ON lr.etl_source = q.source AND lr.readable_id = q.item_key"
                " WHERE lr.published ON CONFLICT DO NOTHING",
                run_id,
                [q.source for q in items if q.item_key],
                [q.item_key for q in items if q.item_key],
            )
        return len(items)

    async def list_quarantine(
        self, source: str | None = None, limit: int = 50
    ) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await conn.fetch(
                "SELECT id, source, run_id, item_key, reason, created_on, length(raw) AS raw_bytes"
                " FROM quarantine WHERE ($1::text IS NULL OR source = $1) ORDER BY id DESC LIMIT $2",
                source,
                limit,
            )

    # -- prune ----------------------------------------------------------------------------

    async def prune(
        self,
        *,
        etl_source: str,
        run_id: str,
        resource_types: Sequence[str],
        feed_types: Sequence[str],
        fetch_complete: bool,
        max_share: float,
        force: bool = False,
        written: int | None = None,
    ) -> PruneResult:
        """Unpublish what a complete fetch no longer lists, unless the guard refuses.
        `written`: rows the run wrote (None: unknown, the rows seen stand in for them)."""
        async with self.pool.acquire() as conn, conn.transaction():
            # Fresh statistics for the marks this run just wrote: with stale ones the planner
            # takes the run's tens of thousands of marks for one row and nests the anti-joins
            # below into an O(seen x published) loop (minutes at 100k resources).
            await conn.execute("ANALYZE etl_seen")
            seen_resources = await conn.fetchval(
                "SELECT count(*) FROM etl_seen WHERE run_id = $1 AND kind = 'resource'", run_id
            )
            seen_feed = await conn.fetchval(
                "SELECT count(*) FROM etl_seen WHERE run_id = $1 AND kind = 'feed_item'", run_id
            )
            published = await conn.fetchval(
                "SELECT count(*) FROM learning_resource WHERE etl_source = $1 AND published"
                " AND resource_type = ANY($2::text[]) AND NOT test_mode",
                etl_source,
                list(resource_types),
            )
            vanished = await conn.fetchval(
                "SELECT count(*) FROM learning_resource lr WHERE etl_source = $1 AND published"
                " AND resource_type = ANY($3::text[]) AND NOT test_mode AND NOT EXISTS"
                " (SELECT 1 FROM etl_seen s WHERE s.run_id = $2 AND s.kind = 'resource' AND s.item_id = lr.id)",
                etl_source,
                run_id,
                list(resource_types),
            )
            feed_total = await conn.fetchval(
                "SELECT count(*) FROM feed_item WHERE etl_source = $1 AND feed_type = ANY($2::text[])",
                etl_source,
                list(feed_types),
            )
            feed_vanished = await conn.fetchval(
                "SELECT count(*) FROM feed_item fi WHERE etl_source = $1 AND feed_type = ANY($3::text[])"
                " AND NOT EXISTS (SELECT 1 FROM etl_seen s WHERE s.run_id = $2 AND s.kind = 'feed_item'"
                " AND s.item_id = fi.id)",
                etl_source,
                run_id,
                list(feed_types),
            )
            reason = _guard_reason(
                fetch_complete,
                seen_resources + seen_feed,
                vanished,
                published,
                feed_vanished,
                feed_total,
                max_share,
            )
            if reason and not force:
                await conn.execute("DELETE FROM etl_seen WHERE run_id = $1", run_id)
                await self._refresh_statistics(conn, seen_resources if written is None else written)
                return PruneResult(unpublished=0, refused=True, reason=reason)
            unpublished = 0
            if vanished:
                status = await conn.execute(
                    # Clearing the hash makes the next upsert of a returning item rewrite the row.
                    "UPDATE learning_resource lr SET published = false, content_hash = 'pruned',"
                    " updated_on = now() WHERE etl_source = $1 AND published"
                    " AND resource_type = ANY($3::text[]) AND NOT test_mode AND NOT EXISTS"
                    " (SELECT 1 FROM etl_seen s WHERE s.run_id = $2 AND s.kind = 'resource' AND s.item_id = lr.id)",
                    etl_source,
                    run_id,
                    list(resource_types),
                )
                unpublished += int(status.split()[-1])
            if feed_vanished:
                status = await conn.execute(
                    "DELETE FROM feed_item fi WHERE etl_source = $1 AND feed_type = ANY($3::text[])"
                    " AND NOT EXISTS (SELECT 1 FROM etl_seen s WHERE s.run_id = $2"
                    " AND s.kind = 'feed_item' AND s.item_id = fi.id)",
                    etl_source,
                    run_id,
                    list(feed_types),
                )
                unpublished += int(status.split()[-1])
            await conn.execute("DELETE FROM etl_seen WHERE run_id = $1", run_id)
            changed = seen_resources if written is None else written + unpublished
            await self._refresh_statistics(conn, changed)
        return PruneResult(unpublished=unpublished)

    async def _refresh_statistics(self, conn: asyncpg.Connection, loaded: int) -> None:
        """After a large load, before the run's index and embed passes: autovacuum has not yet
        seen the new rows, and with stale statistics `pending_index` hashes and spills the whole
        source on every batch (2.6x slower at 50k resources). A few hundred ms per large run;
        a run that wrote nothing (an unchanged re-run) changed no statistics and skips it."""
        if loaded >= ANALYZE_AFTER_ROWS:
            await conn.execute(
                "ANALYZE learning_resource; ANALYZE search_index_state; ANALYZE embedding_state"
            )

    # -- reads ----------------------------------------------------------------------------

    async def get_resources(self, ids: Sequence[int]) -> list[StoredResource]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, data, content_hash, published, created_on, updated_on FROM learning_resource"
                " WHERE id = ANY($1::bigint[])",
                list(ids),
            )
        by_id = {r["id"]: StoredResource(**dict(r)) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    async def counts_by_source(self) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await conn.fetch(
                "SELECT etl_source, count(*) FILTER (WHERE published) AS published,"
                " count(*) AS total FROM learning_resource GROUP BY etl_source ORDER BY etl_source"
            )

    async def start_run(self, run_id: str, source: str, options: dict[str, str]) -> None:
        """`options`: the run's extractor options, kept in counts: a source with two schedules
        (mitpe's courses and its news/events) has two kinds of run."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO etl_run (run_id, source, counts) VALUES ($1, $2, $3::text::jsonb)"
                " ON CONFLICT (run_id) DO NOTHING",
                run_id,
                source,
                json.dumps({"options": options}),
            )

    async def finish_run(self, run_id: str, outcome: str, counts: dict[str, Any]) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE etl_run SET finished_on = now(), outcome = $2,"
                " counts = counts || $3::text::jsonb WHERE run_id = $1",
                run_id,
                outcome,
                json.dumps(counts),
            )


def _guard_reason(
    fetch_complete: bool,
    seen: int,
    vanished: int,
    published: int,
    feed_vanished: int,
    feed_total: int,
    max_share: float,
) -> str | None:
    if not fetch_complete:
        return "fetch did not complete"
    if seen == 0 and (published or feed_total):
        return "source returned nothing"
    if published and vanished / published > max_share:
        return f"would unpublish {vanished} of {published} published resources (> {max_share:.0%})"
    if feed_total and feed_vanished / feed_total > max_share:
        return f"would remove {feed_vanished} of {feed_total} feed items (> {max_share:.0%})"
    return None
