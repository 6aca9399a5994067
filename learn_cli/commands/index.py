"""`learn index`: zero-downtime reindex of the OpenSearch keyword index from the Postgres catalog.

`reindex` builds new backing indexes from the catalog while live writes go to both, checks them
and swaps the aliases atomically; `rollback` points the aliases back at the previous indexes;
`abort` drops a rebuild that failed its check; `status` shows what each alias points at.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from typing import Annotated, Any

import typer

index_app = typer.Typer(
    help="The OpenSearch keyword index: reindex, rollback, status.", no_args_is_help=True
)

TypeOption = Annotated[
    list[str] | None, typer.Option("--type", "-t", help="resource type (repeatable; default all)")
]


# -- reading the catalog ------------------------------------------------------------------------


async def iter_catalog_documents(
    pool: Any, types: Sequence[str], batch_size: int = 500
) -> AsyncIterator[list[dict[str, Any]]]:
    """Published resources of `types` as search documents, in id order, one batch at a time."""
    from learnflow.models import Resource
    from learnflow.search_doc import to_search_document

    after = 0
    while True:
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, data, created_on FROM learning_resource"
                " WHERE published AND resource_type = ANY($1::text[]) AND id > $2"
                " ORDER BY id LIMIT $3",
                list(types),
                after,
                batch_size,
            )
        if not rows:
            return
        yield [
            to_search_document(Resource.model_validate(r["data"]), r["id"], r["created_on"])
            for r in rows
        ]
        after = rows[-1]["id"]


async def iter_catalog_content_files(
    pool: Any, types: Sequence[str], batch_size: int = 200
) -> AsyncIterator[list[dict[str, Any]]]:
    """Published content files of published resources of `types` (course/program), as documents."""
    from learnflow.stores.opensearch_layout import content_file_document

    after = 0
    while True:
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                """
                SELECT cf.id, cf.resource_id, cf.key, cf.title, cf.url, cf.file_type,
                       cf.content_type, cf.file_extension, cf.content, cf.checksum, cf.data,
                       cf.published, run.run_id, lr.platform, lr.offered_by,
                       lr.readable_id AS resource_readable_id, lr.title AS resource_title,
                       lr.resource_type
                FROM content_file cf
                JOIN learning_resource lr ON lr.id = cf.resource_id
                LEFT JOIN learning_resource_run run ON run.id = cf.run_id
                WHERE cf.published AND lr.published AND lr.resource_type = ANY($1::text[])
                  AND cf.id > $2
                ORDER BY cf.id LIMIT $3
                """,
                list(types),
                after,
                batch_size,
            )
        if not rows:
            return
        yield [content_file_document(dict(r)) for r in rows]
        after = rows[-1]["id"]


async def rebuild_from_catalog(
    index: Any, pool: Any, types: Sequence[str] | None = None, tolerance: float = 0.05
) -> Any:
    """The whole zero-downtime reindex of `types` (default all) from the catalog."""
    from learnflow.stores.opensearch_layout import CONTENT_FILE_TYPES, RESOURCE_TYPES

    chosen = list(types or RESOURCE_TYPES)
    files_of = [t for t in chosen if t in CONTENT_FILE_TYPES]
    return await index.rebuild(
        iter_catalog_documents(pool, chosen),
        iter_catalog_content_files(pool, files_of) if files_of else None,
        types=chosen,
        tolerance=tolerance,
    )


# -- commands ---------------------------------------------------------------------------------


async def _opensearch_stores():
    from learnflow.stores import get_stores
    from learnflow.stores.opensearch import OpenSearchKeywordIndex

    stores = await get_stores()
    if not isinstance(stores.keyword, OpenSearchKeywordIndex):
        await stores.close()
        typer.echo("error: the keyword backend is not OpenSearch (set OPENSEARCH_URL)", err=True)
        raise typer.Exit(2)
    return stores


def _run(coro_fn) -> None:
    async def go() -> None:
        from learnflow.stores.opensearch import ReindexError

        stores = await _opensearch_stores()
        try:
            await coro_fn(stores)
        except (ReindexError, ValueError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            await stores.close()

    asyncio.run(go())


@index_app.command("reindex")
def reindex_cmd(
    resource_type: TypeOption = None,
    tolerance: Annotated[
        float, typer.Option(help="allowed relative difference of document counts, new vs old")
    ] = 0.05,
) -> None:
    """Rebuild from the catalog into new indexes, check them, swap the aliases atomically."""

    async def go(stores) -> None:
        report = await rebuild_from_catalog(
            stores.keyword, stores.pool, resource_type or None, tolerance
        )
        typer.echo(json.dumps(asdict(report), indent=1))

    _run(go)


@index_app.command("rollback")
def rollback_cmd(resource_type: TypeOption = None) -> None:
    """Point the aliases back at the previous indexes (run again to roll forward)."""

    async def go(stores) -> None:
        swapped = await stores.keyword.rollback(resource_type or None)
        for rtype, (was, now) in swapped.items():
            typer.echo(f"{rtype}: {was} -> {now}")

    _run(go)


@index_app.command("abort")
def abort_cmd(resource_type: TypeOption = None) -> None:
    """Delete the new indexes of a rebuild that did not swap."""

    async def go(stores) -> None:
        for name in await stores.keyword.abort_reindex(resource_type or None):
            typer.echo(f"deleted {name}")

    _run(go)


@index_app.command("status")
def status_cmd() -> None:
    """Which backing index each alias points at, with document counts."""

    async def go(stores) -> None:
        for s in await stores.keyword.status():
            line = f"{s.resource_type:16s} current {s.current} ({s.current_docs} docs)"
            if s.reindexing:
                line += f"  reindexing {s.reindexing} ({s.reindexing_docs} docs)"
            if s.previous:
                line += f"  previous {s.previous}"
            typer.echo(line)

    _run(go)


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
