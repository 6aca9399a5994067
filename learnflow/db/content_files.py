"""The content-file store: a run's archive state (checksum, archive key) and its content files.

MIT Learn's `load_content_files` semantics: files upserted per run on `(run, key)`; a row whose
text, title and flags did not change is not rewritten; files gone from the run's newest archive
are unpublished (soft, with `unpublished_on`) or, for Canvas, deleted at once; unpublished files
are purged after the retention period. The catalog itself (resources, runs) is `CatalogStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from learnflow.models import ContentFile

# (archive_checksum, content, title) by key: the `previous` lookup of the archive walkers.
Previous = dict[str, tuple[str | None, str, str | None]]


@dataclass(frozen=True)
class ArchiveRun:
    """A course run that archives load content files into, with its resource's flags."""

    id: int  # learning_resource_run.id
    resource_id: int
    run_id: str
    readable_id: str
    etl_source: str
    platform: str
    resource_published: bool
    test_mode: bool
    run_published: bool
    checksum: str | None
    archive_key: str | None


@dataclass
class FileUpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def escape_like(text: str) -> str:
    """`text` as a literal LIKE pattern (its `%`, `_` and `\\` matched as themselves)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_RUN_SELECT = """
    SELECT r.id, r.resource_id, r.run_id, lr.readable_id, lr.etl_source, lr.platform,
           lr.published AS resource_published, lr.test_mode, r.published AS run_published,
           r.checksum, r.archive_key
    FROM learning_resource_run r JOIN learning_resource lr ON lr.id = r.resource_id
"""


def _run(row: asyncpg.Record) -> ArchiveRun:
    return ArchiveRun(**dict(row))


class ContentFileStore:
    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    # -- runs -----------------------------------------------------------------------------

    async def course_runs(self, etl_source: str) -> list[ArchiveRun]:
        """Every run of the source's courses (run matching happens in Python: it normalises)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                _RUN_SELECT + " WHERE lr.etl_source = $1 AND lr.resource_type = 'course'"
                " ORDER BY lr.published DESC, lr.id DESC, r.id DESC",
                etl_source,
            )
        return [_run(r) for r in rows]

    async def run_of(self, platform: str, readable_id: str, run_id: str) -> ArchiveRun | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                _RUN_SELECT + " WHERE lr.platform = $1 AND lr.readable_id = $2"
                " AND lr.resource_type = 'course' AND r.run_id = $3",
                platform,
                readable_id,
                run_id,
            )
        return _run(row) if row else None

    async def runs_with_archive_key(self, etl_source: str, archive_key: str) -> list[ArchiveRun]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                _RUN_SELECT + " WHERE lr.etl_source = $1 AND r.archive_key = $2",
                etl_source,
                archive_key,
            )
        return [_run(r) for r in rows]

    async def record_archive(self, run_pk: int, *, checksum: str | None, archive_key: str) -> None:
        """Remember the archive a run's files came from (level-1 and level-2 change detection)."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE learning_resource_run SET archive_key = $2,"
                " checksum = coalesce($3, checksum), archive_recorded_on = now() WHERE id = $1",
                run_pk,
                archive_key,
                checksum,
            )

    async def resource_flags(self, platform: str, readable_id: str) -> tuple[bool, bool] | None:
        """(published, test_mode) of a course, or None when the catalog does not have it."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT published, test_mode FROM learning_resource"
                " WHERE platform = $1 AND readable_id = $2 AND resource_type = 'course'",
                platform,
                readable_id,
            )
        return (row["published"], row["test_mode"]) if row else None

    async def unpublish_resources(
        self, etl_source: str, readable_id_prefix: str, keep_readable_id: str | None = None
    ) -> int:
        """Unpublish a source's resources whose readable_id starts with the (literal) prefix."""
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                "UPDATE learning_resource SET published = false, content_hash = 'pruned',"
                " updated_on = now() WHERE etl_source = $1 AND published"
                " AND readable_id LIKE $2 || '%' ESCAPE '\\'"
                " AND ($3::text IS NULL OR readable_id <> $3)",
                etl_source,
                escape_like(readable_id_prefix),
                keep_readable_id,
            )
        return int(status.split()[-1])

    async def forget_etl_seen(self, run_id: str) -> None:
        """`CatalogStore.upsert_resources` records what a run saw for its prune; archive loads
        never prune, so they clear their marks right away."""
        async with self.pool.acquire() as conn:
            await conn.execute("DELETE FROM etl_seen WHERE run_id = $1", run_id)

    # -- content files ----------------------------------------------------------------------

    async def previous_files(self, run_pk: int) -> Previous:
        """What the walkers need to reuse stored text: published files and known-textless keys."""
        async with self.pool.acquire() as conn:
            files = await conn.fetch(
                "SELECT key, archive_checksum, content, title FROM content_file"
                " WHERE run_id = $1 AND published",
                run_pk,
            )
            textless = await conn.fetch(
                "SELECT key, archive_checksum FROM content_file_textless WHERE run_id = $1", run_pk
            )
        previous: Previous = {r["key"]: (r["archive_checksum"], "", None) for r in textless}
        for r in files:
            previous[r["key"]] = (r["archive_checksum"], r["content"], r["title"])
        return previous

    async def upsert_files(self, run: ArchiveRun, files: Sequence[ContentFile]) -> FileUpsertCounts:
        """Insert or update files on (run, key); unchanged rows are not rewritten."""
        counts = FileUpsertCounts()
        unique = {f.key: f for f in files}
        if not unique:
            return counts
        values = list(unique.values())
        async with self.pool.acquire() as conn, conn.transaction():
            changed = await _write_files(conn, [(run.id, run.resource_id, f) for f in values])
            # A file that has text again is no longer textless.
            await conn.execute(
                "DELETE FROM content_file_textless WHERE run_id = $1 AND key = ANY($2::text[])",
                run.id,
                list(unique),
            )
        counts.inserted = sum(1 for r in changed if r["inserted"])
        counts.updated = len(changed) - counts.inserted
        counts.unchanged = len(unique) - len(changed)
        return counts

    async def remember_textless(self, run_pk: int, textless: Mapping[str, str]) -> None:
        if not textless:
            return
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO content_file_textless (run_id, key, archive_checksum)"
                " SELECT $1, k, c FROM unnest($2::text[], $3::text[]) AS t(k, c)"
                " ON CONFLICT (run_id, key) DO UPDATE SET archive_checksum = EXCLUDED.archive_checksum",
                run_pk,
                list(textless),
                list(textless.values()),
            )

    async def retire_missing(self, run_pk: int, keep: Iterable[str]) -> int:
        """Unpublish (soft, dated) the run's published files not in `keep`."""
        keep_keys = sorted(set(keep))
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                "UPDATE content_file SET published = false, unpublished_on = now(),"
                " updated_on = now() WHERE run_id = $1 AND published"
                " AND NOT (key = ANY($2::text[]))",
                run_pk,
                keep_keys,
            )
        return int(status.split()[-1])

    async def forget_textless_except(self, run_pk: int, keep: Iterable[str]) -> None:
        """Drop the textless marks of keys no longer in the run's newest archive."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM content_file_textless WHERE run_id = $1 AND NOT (key = ANY($2::text[]))",
                run_pk,
                sorted(set(keep)),
            )

    async def missing_file_ids(self, run_pk: int, keep: Iterable[str]) -> list[int]:
        """Ids of the run's files (published or not) whose key is not in `keep`."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id FROM content_file WHERE run_id = $1 AND NOT (key = ANY($2::text[]))"
                " ORDER BY id",
                run_pk,
                sorted(set(keep)),
            )
        return [r["id"] for r in rows]

    async def delete_files(self, ids: Sequence[int]) -> int:
        """Hard-delete files by id (Canvas's immediate delete, the purge)."""
        if not ids:
            return 0
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM content_file WHERE id = ANY($1::bigint[])", list(ids)
            )
        return int(status.split()[-1])

    async def unpublish_course_content(
        self, etl_source: str, readable_id_prefix: str
    ) -> tuple[int, int]:
        """Unpublish the source's resources whose readable_id starts with the literal prefix, and
        their content files. Returns (resources, files)."""
        pattern = escape_like(readable_id_prefix) + "%"
        async with self.pool.acquire() as conn, conn.transaction():
            ids = [
                r["id"]
                for r in await conn.fetch(
                    "SELECT id FROM learning_resource WHERE etl_source = $1"
                    " AND readable_id LIKE $2 ESCAPE '\\'",
                    etl_source,
                    pattern,
                )
            ]
            if not ids:
                return 0, 0
            resources = await conn.execute(
                "UPDATE learning_resource SET published = false, content_hash = 'pruned',"
                " updated_on = now() WHERE id = ANY($1::bigint[]) AND published",
                ids,
            )
            files = await conn.execute(
                "UPDATE content_file SET published = false, unpublished_on = now(),"
                " updated_on = now() WHERE resource_id = ANY($1::bigint[]) AND published",
                ids,
            )
        return int(resources.split()[-1]), int(files.split()[-1])

    async def purgeable_ids(self, older_than: timedelta, limit: int = 1000) -> list[int]:
        """Up to `limit` files unpublished longer than `older_than` ago (oldest ids first)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id FROM content_file WHERE NOT published"
                " AND unpublished_on < now() - $1::interval ORDER BY id LIMIT $2",
                older_than,
                limit,
            )
        return [r["id"] for r in rows]

    # -- reads ----------------------------------------------------------------------------

    async def files_of_run(self, run_pk: int, *, published: bool | None = None) -> list[dict]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, key, title, url, content_type, file_extension, content, checksum,"
                " archive_checksum, published, unpublished_on FROM content_file"
                " WHERE run_id = $1 AND ($2::boolean IS NULL OR published = $2) ORDER BY key",
                run_pk,
                published,
            )
        return [dict(r) for r in rows]

    async def search_text(
        self, text: str, *, etl_source: str | None = None, limit: int = 10
    ) -> list[dict]:
        """Published content files matching `text` (Postgres full-text search, best first)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                # The tsvector expression is the one 0003_content_files.sql indexes (keep equal).
                """
                SELECT cf.id, cf.key, cf.title, cf.url, lr.readable_id, lr.etl_source, r.run_id,
                       ts_rank(to_tsvector('english', coalesce(cf.title, '') || ' '
                               || left(cf.content, 100000)), q) AS rank
                FROM content_file cf
                JOIN learning_resource lr ON lr.id = cf.resource_id
                LEFT JOIN learning_resource_run r ON r.id = cf.run_id,
                     plainto_tsquery('english', $1) q
                WHERE cf.published
                  AND to_tsvector('english', coalesce(cf.title, '') || ' '
                                  || left(cf.content, 100000)) @@ q
                  AND ($2::text IS NULL OR lr.etl_source = $2)
                ORDER BY rank DESC, cf.id LIMIT $3
                """,
                text,
                etl_source,
                limit,
            )
        return [dict(r) for r in rows]


# -- files of a resource (no run): marketing pages -------------------------------------------

# Course and program pages are what MIT Learn scrapes (`scrape_marketing_pages`).
PAGE_RESOURCE_TYPES = ("course", "program")


@dataclass
class PageTarget:
    """A page the marketing-page fetch may GET: a published course/program URL."""

    url: str
    has_page: bool  # a published file of the file type already exists for it


@dataclass
class ResourceFileLoad:
    """What `upsert_resource_files` did: counts, the keys no resource has, the rows it wrote."""

    counts: FileUpsertCounts
    unmatched: list[str]
    changed_ids: list[int]


# The columns `activities/search.py` (_CONTENT_ROWS) reads for `to_content_file_document`; kept
# equal so a file indexed at load looks the same as one indexed by the watermark pass.
_INDEX_ROWS = """
SELECT cf.id, cf.key, cf.resource_id, run.run_id AS run_id, cf.title, cf.url, cf.file_type,
       cf.content_type, cf.file_extension, cf.content, cf.checksum, cf.data,
       (cf.published AND (lr.published OR lr.test_mode)
        AND (coalesce(run.published, true) OR lr.test_mode)) AS visible,
       lr.platform, lr.offered_by, lr.readable_id AS resource_readable_id,
       lr.title AS resource_title,
       lr.data->'topics' AS resource_topics, lr.data->'ocw_topics' AS resource_ocw_topics
FROM content_file cf
JOIN learning_resource lr ON lr.id = cf.resource_id
LEFT JOIN learning_resource_run run ON run.id = cf.run_id
WHERE cf.id = ANY($1::bigint[])
ORDER BY cf.id
"""


async def page_targets(
    pool: asyncpg.Pool, file_type: str, etl_sources: Sequence[str] | None = None
) -> list[PageTarget]:
    """Published courses/programs with an http(s) URL (of these etl_sources, or all), those
    without a published file of `file_type` first (a fetch cut short still covers the new ones)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """
            SELECT lr.url, bool_or(EXISTS (
                SELECT 1 FROM content_file cf WHERE cf.resource_id = lr.id AND cf.run_id IS NULL
                  AND cf.file_type = $2 AND cf.published)) AS has_page
            FROM learning_resource lr
            WHERE lr.published AND lr.resource_type = ANY($1::text[])
              AND lr.url ~* '^https?://'
              AND ($3::text[] IS NULL OR lr.etl_source = ANY($3::text[]))
            GROUP BY lr.url
            ORDER BY has_page, lr.url
            """,
            list(PAGE_RESOURCE_TYPES),
            file_type,
            list(etl_sources) if etl_sources is not None else None,
        )
    return [PageTarget(r["url"], r["has_page"]) for r in rows]


async def program_course_urls(pool: asyncpg.Pool, urls: Sequence[str]) -> dict[str, list[str]]:
    """For the published programs among `urls`: their published courses' http(s) URLs, in
    program order (a program's marketing page gets its courses' pages appended)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """
            SELECT p.url AS program_url, c.url AS course_url
            FROM learning_resource p
            JOIN learning_resource_relationship r ON r.parent_id = p.id
            JOIN learning_resource c ON c.id = r.child_id
            WHERE p.published AND p.resource_type = 'program' AND p.url = ANY($1::text[])
              AND c.published AND c.resource_type = 'course' AND c.url ~* '^https?://'
            ORDER BY p.url, r.position, c.url
            """,
            list(urls),
        )
    out: dict[str, list[str]] = {}
    for r in rows:
        children = out.setdefault(r["program_url"], [])
        if r["course_url"] not in children and r["course_url"] != r["program_url"]:
            children.append(r["course_url"])
    return out


async def upsert_resource_files(
    pool: asyncpg.Pool, files: Sequence[ContentFile]
) -> ResourceFileLoad:
    """Attach run-less files to every published course/program whose `url` equals the file's key
    (MIT Learn's `learning_resource` content files); an unchanged file is not rewritten (same
    checksum, title, url and metadata). Keys that match no resource come back in `unmatched`."""
    unique = {f.key: f for f in files}
    load = ResourceFileLoad(FileUpsertCounts(), [], [])
    if not unique:
        return load
    async with pool.acquire() as conn, conn.transaction():
        targets = await conn.fetch(
            "SELECT id, url FROM learning_resource WHERE published AND url = ANY($1::text[])"
            " AND resource_type = ANY($2::text[])",
            list(unique),
            list(PAGE_RESOURCE_TYPES),
        )
        matched = {r["url"] for r in targets}
        load.unmatched = [k for k in unique if k not in matched]
        pairs = [(r["id"], unique[r["url"]]) for r in targets]
        if not pairs:
            return load
        changed = await _write_files(conn, [(None, rid, f) for rid, f in pairs])
    load.counts.inserted = sum(1 for r in changed if r["inserted"])
    load.counts.updated = len(changed) - load.counts.inserted
    load.counts.unchanged = len(pairs) - len(changed)
    load.changed_ids = [r["id"] for r in changed]
    return load


async def _write_files(
    conn: asyncpg.Connection, rows: Sequence[tuple[int | None, int, ContentFile]]
) -> list[asyncpg.Record]:
    """Insert or update `(run pk or None, resource pk, file)` rows on (run, resource, key); a
    row whose text, title, url, flags and metadata did not change is not rewritten. Returns the
    written rows' `id` and `inserted`."""
    return await conn.fetch(
        """
        INSERT INTO content_file AS cf (run_id, resource_id, key, title, url, file_type,
            content_type, file_extension, content, checksum, archive_checksum, published,
            data, unpublished_on)
        SELECT t.run_id, t.resource_id, t.key, t.title, t.url, t.file_type, t.content_type,
            t.file_extension, t.content, t.checksum, t.archive_checksum, true, t.data, NULL
        FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[])
            AS t(run_id, resource_id, key, title, url, file_type, content_type, file_extension,
                 content, checksum, archive_checksum, data)
        ON CONFLICT (coalesce(run_id, 0), resource_id, key) DO UPDATE SET
            title = EXCLUDED.title, url = EXCLUDED.url, file_type = EXCLUDED.file_type,
            content_type = EXCLUDED.content_type, file_extension = EXCLUDED.file_extension,
            content = EXCLUDED.content, checksum = EXCLUDED.checksum,
            archive_checksum = EXCLUDED.archive_checksum, published = true,
            data = EXCLUDED.data, unpublished_on = NULL, updated_on = now()
        WHERE cf.checksum IS DISTINCT FROM EXCLUDED.checksum
           OR cf.archive_checksum IS DISTINCT FROM EXCLUDED.archive_checksum
           OR cf.title IS DISTINCT FROM EXCLUDED.title
           OR cf.url IS DISTINCT FROM EXCLUDED.url
           OR NOT cf.published
           OR cf.data IS DISTINCT FROM EXCLUDED.data
        RETURNING id, (xmax = 0) AS inserted
        """,
        [run_pk for run_pk, _, _ in rows],
        [resource_pk for _, resource_pk, _ in rows],
        [f.key for _, _, f in rows],
        [f.title for _, _, f in rows],
        [f.url for _, _, f in rows],
        [f.file_type for _, _, f in rows],
        [f.content_type for _, _, f in rows],
        [f.file_extension for _, _, f in rows],
        [f.content for _, _, f in rows],
        [f.checksum for _, _, f in rows],
        [f.archive_checksum for _, _, f in rows],
        # the pool's jsonb codec encodes dicts (see catalog.create_pool)
        [f.model_dump(mode="json", exclude={"content"}) for _, _, f in rows],
    )
