"""`learn status`: per source (and per schedule of a source with two), the last run's outcome
and counts, published/total, progress bars while runs are active, content archives, vectors."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from learn_cli.commands.ops import (
    DataDir,
    _client,
    _console,
    _database_url,
    _run,
    use_data_dir,
)

# Stages of IngestSourceWorkflow's `progress` query, in order: the bar's position when the
# workflow reports no finer count.
STAGES = ("starting", "fetching", "loading", "pruning", "indexing", "embedding", "done")


@dataclass
class SourceStatus:
    source: str
    published: int = 0
    total: int = 0
    last_started: datetime | None = None
    last_outcome: str | None = None  # None while the last run has not finished
    last_counts: dict[str, Any] = field(default_factory=dict)
    running: list[dict[str, Any]] = field(default_factory=list)  # progress of each active run
    variant_of: str | None = None  # a source's second schedule: the catalog counts are the source's


def progress_fraction(progress: dict[str, Any]) -> float:
    """0..1 from a `progress` query answer: pages done/total when reported, else the stage."""
    stage = str(progress.get("stage", "starting"))
    index = STAGES.index(stage) if stage in STAGES else 0
    step = 1 / (len(STAGES) - 1)
    base = index * step
    done, total = progress.get("pages_done"), progress.get("pages_total")
    if stage == "loading" and isinstance(done, int) and isinstance(total, int) and total > 0:
        base += step * min(done, total) / total
    return min(base, 1.0)


def schedule_variants() -> dict[tuple[str, str], str]:
    """(source, options) -> the name of a source's second schedule (`mitpe-news-events`,
    `ovs-transcripts`): a schedule whose runs pass options gets a row of its own. Runs with
    other options (a webhook's one content path) count as the source's own."""
    from sources import all_schedules

    return {
        (entry.source, _options_key(entry.arg.options)): entry.schedule_id.removeprefix("ingest/")
        for entry in all_schedules()
        if entry.workflow == "IngestSourceWorkflow" and entry.source and entry.arg.options
    }


def _options_key(options: dict[str, str] | None) -> str:
    return json.dumps(options or {}, sort_keys=True)


async def _catalog_status(
    etl_names: dict[str, str] | None, variants: dict[tuple[str, str], str]
) -> dict[str, SourceStatus]:
    """Per source: the last etl_run and the catalog's counts. The catalog names resources by
    ETL source (mit_edx, see, podcast); `etl_names` maps those to the source names etl_run uses.
    A `variants` schedule's last run has its own row (the catalog counts stay on the source's)."""
    import asyncpg

    conn = await asyncpg.connect(_database_url())
    try:
        runs = await conn.fetch(
            "SELECT DISTINCT ON (source, counts->'options') source, outcome,"
            " counts::text AS counts, started_on FROM etl_run"
            " ORDER BY source, counts->'options', started_on DESC"
        )
        # News and events are feed items: no published flag (a prune deletes them), so every
        # stored item is a published one.
        counts = await conn.fetch(
            "SELECT etl_source, count(*) FILTER (WHERE published) AS published, count(*) AS total"
            " FROM learning_resource GROUP BY etl_source"
            " UNION ALL SELECT etl_source, count(*), count(*) FROM feed_item GROUP BY etl_source"
        )
    finally:
        await conn.close()
    out: dict[str, SourceStatus] = {}
    for r in counts:
        name = (etl_names or {}).get(r["etl_source"], r["etl_source"])
        st = out.setdefault(name, SourceStatus(name))
        st.published += r["published"]
        st.total += r["total"]
    for r in runs:
        run_counts = json.loads(r["counts"] or "{}")
        variant = variants.get((r["source"], _options_key(run_counts.get("options"))))
        name = variant or r["source"]
        st = out.setdefault(name, SourceStatus(name, variant_of=r["source"] if variant else None))
        if st.last_started is not None and st.last_started >= r["started_on"]:
            continue  # the source's own row: its newest run, whatever options that run had
        st.last_started = r["started_on"]
        st.last_outcome = r["outcome"]
        st.last_counts = run_counts
    return out


async def running_ingestions(client) -> list[tuple[str, dict[str, Any]]]:
    """(source, progress) of every running IngestSourceWorkflow, asked through its query."""
    from datetime import timedelta

    from learnflow import search_attributes as sa

    found = []
    query = 'ExecutionStatus="Running" AND WorkflowType="IngestSourceWorkflow"'
    async for wf in client.list_workflows(query):
        source = wf.typed_search_attributes.get(sa.SOURCE) or wf.id
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
        try:
            progress = await handle.query("progress", rpc_timeout=timedelta(seconds=3))
        except Exception as exc:  # no worker answering (RPCError, query failure): say so
            progress = {"stage": "unknown", "error": type(exc).__name__}
        found.append((source, {**progress, "workflow_id": wf.id}))
    return found


@dataclass
class ArchiveStatus:
    """The last finished content-archive run of one source (IngestArchivesWorkflow, OCW)."""

    source: str
    workflow_id: str
    closed: datetime | None
    status: str
    outcome: str | None = None
    loaded: int | None = None
    retired: int | None = None


ARCHIVE_WORKFLOWS = ("IngestArchivesWorkflow", "IngestOcwWorkflow")


async def last_archive_runs(client, limit: int = 500) -> list[ArchiveStatus]:
    """Newest closed archive run per source, from Temporal's visibility (the runs keep their
    counts as search attributes; archives write no etl_run row)."""
    from learnflow import search_attributes as sa

    types = " OR ".join(f"WorkflowType = '{t}'" for t in ARCHIVE_WORKFLOWS)
    query = f"({types}) AND ExecutionStatus != 'Running'"
    found: dict[str, ArchiveStatus] = {}
    async for wf in client.list_workflows(query, limit=limit):
        attrs = wf.typed_search_attributes
        source = attrs.get(sa.SOURCE) or ("ocw" if wf.workflow_type == "IngestOcwWorkflow" else "")
        if not source:
            continue
        seen = found.get(source)
        closed = wf.close_time
        never = datetime.min.replace(tzinfo=UTC)
        if seen is not None and (seen.closed or never) >= (closed or never):
            continue
        found[source] = ArchiveStatus(
            source=source,
            workflow_id=wf.id,
            closed=closed,
            status=wf.status.name.lower() if wf.status else "unknown",
            outcome=attrs.get(sa.OUTCOME),
            loaded=attrs.get(sa.UPSERTED),
            retired=attrs.get(sa.UNPUBLISHED),
        )
    return [found[k] for k in sorted(found)]


async def collect_status(
    registered_sources: set[str], etl_names: dict[str, str] | None = None
) -> list[SourceStatus]:
    """Per source (and second schedule): catalog counts, the last etl_run, and the progress
    of active runs (a scheduled run's workflow id starts with its schedule's)."""
    variants = schedule_variants()
    statuses = await _catalog_status(etl_names, variants)
    for name in registered_sources:
        statuses.setdefault(name, SourceStatus(name))
    for (source, _options), name in variants.items():
        statuses.setdefault(name, SourceStatus(name, variant_of=source))
    client = await _client()
    for source, progress in await running_ingestions(client):
        wid = str(progress.get("workflow_id", ""))
        name = next((v for v in variants.values() if wid.startswith(f"ingest/{v}-")), source)
        statuses.setdefault(name, SourceStatus(name)).running.append(progress)
    return [statuses[k] for k in sorted(statuses)]


def _status_table(rows: list[SourceStatus]):
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    table = Table("source", "last run", "outcome", "upserted", "unpub.", "quar.", "published")
    table.add_column("progress", min_width=34)
    for st in rows:
        c = st.last_counts
        upserted = (c.get("inserted") or 0) + (c.get("updated") or 0)
        if st.running:
            outcome = "running"
        else:
            outcome = st.last_outcome or ("unfinished" if st.last_started else "never run")
        progress: Any = ""
        if st.running:
            p = st.running[0]
            bar = Table.grid(padding=(0, 1))
            bar.add_row(
                ProgressBar(total=100, completed=round(progress_fraction(p) * 100), width=16),
                Text(_progress_label(p)),
            )
            progress = bar
        table.add_row(
            st.source,
            f"{st.last_started:%Y-%m-%d %H:%M}" if st.last_started else "-",
            outcome,
            str(upserted) if c else "-",
            str(c.get("unpublished", "-")) if c else "-",
            str(c.get("quarantined", "-")) if c else "-",
            f"see {st.variant_of}" if st.variant_of else f"{st.published}/{st.total}",
            progress,
        )
    return table


def _archives_table(rows: list[ArchiveStatus]):
    from rich.table import Table

    table = Table(
        "source", "last archive run", "status", "outcome", "files loaded", "retired",
        title="content archives",
    )  # fmt: skip
    for a in rows:
        table.add_row(
            a.source,
            f"{a.closed:%Y-%m-%d %H:%M}" if a.closed else "-",
            a.status,
            a.outcome or "-",
            "-" if a.loaded is None else str(a.loaded),
            "-" if a.retired is None else str(a.retired),
        )
    return table


def _progress_label(progress: dict[str, Any]) -> str:
    details = ", ".join(
        f"{k} {v}" for k, v in progress.items() if k not in ("stage", "workflow_id", "error")
    )
    return f"{progress.get('stage', '?')}" + (f" ({details})" if details else "")


def status(
    watch: Annotated[bool, typer.Option(help="refresh until no ingestion is running")] = False,
    interval: Annotated[float, typer.Option(help="seconds between refreshes")] = 2.0,
    data_dir: DataDir = None,
) -> None:
    """Per source: last run outcome and counts, published/total, a progress bar while running."""
    from rich.live import Live

    from sources import all_sources

    use_data_dir(data_dir)

    sources = all_sources()
    registered = set(sources)
    etl_names = _etl_names(sources)
    console = _console()
    rows = _run(collect_status(registered, etl_names))
    if not watch or not any(r.running for r in rows):
        archives = _run(_archive_runs())
        merge_archive_runs(rows, archives)
        console.print(_status_table(rows))
        if archives:
            console.print(_archives_table(archives))
        console.print(_run(_vector_status()))
        return
    with Live(_status_table(rows), console=console, refresh_per_second=4) as live:
        while any(r.running for r in rows):
            time.sleep(interval)
            rows = _run(collect_status(registered, etl_names))
            live.update(_status_table(rows))


async def _vector_status() -> str:
    """The encoder whose collections the search service reads and, after a change of
    QDRANT_ENCODER, how far the configured one has caught up (it is promoted when complete)."""
    import asyncpg

    from learnflow.db.catalog import create_pool
    from learnflow.db.vector_serving import catch_up, read_serving
    from learnflow.settings import get_settings
    from learnflow.stores.vector_serving import configured_encoder

    configured = configured_encoder(get_settings())
    pool = await create_pool(_database_url(), min_size=1, max_size=1)
    try:
        record = await read_serving(pool)
        progress = await catch_up(pool, configured)
    except asyncpg.PostgresError as exc:  # a database `learn migrate` has not brought up to date
        return f"vectors: unknown ({exc})"
    finally:
        await pool.close()
    if record is None:  # a first encoder serves from its first vector; recorded when complete
        line = f"vectors: serving {configured} (first pass)"
    else:
        line = f"vectors: serving {record.encoder}"
    if record is None or record.encoder != configured:
        line += f"; {configured}: {progress.embedded}/{progress.published} resources embedded"
        if not progress.complete:
            line += " (the embeddings/resources schedule embeds the rest)"
    if record is not None and record.retiring:
        line += f"; {record.retiring}'s collections to be dropped"
    return line


def merge_archive_runs(rows: list[SourceStatus], archives: list[ArchiveStatus]) -> None:
    """A source loaded only by content-archive runs (canvas, ocw) writes no etl_run row: its
    last run is its newest archive run in Temporal, with that run's counts."""
    by_source = {a.source: a for a in archives}
    for st in rows:
        run = by_source.get(st.source)
        if run is None or st.last_started is not None or st.running:
            continue
        st.last_started = run.closed
        st.last_outcome = run.outcome if run.status == "completed" else run.status
        st.last_counts = {"inserted": run.loaded or 0, "unpublished": run.retired or 0}


def _etl_names(sources: dict[str, Any]) -> dict[str, str]:
    """ETL source -> source name, where exactly one source loads that ETL source."""
    by_etl: dict[str, list[str]] = {}
    for name, source in sources.items():
        by_etl.setdefault(source.etl_source, []).append(name)
    return {etl: names[0] for etl, names in by_etl.items() if len(names) == 1 and etl != names[0]}


async def _archive_runs() -> list[ArchiveStatus]:
    return await last_archive_runs(await _client())
