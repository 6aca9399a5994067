"""Inputs and outputs of every workflow and activity: small pydantic models, keys not blobs.

Workflows import only this module (plus temporalio and the stdlib), so it must stay import-light.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

# Task queues mirror MIT Learn's Celery workers.
DEFAULT_QUEUE = "default"
ARCHIVE_QUEUE = "edx_content"
EMBEDDINGS_QUEUE = "embeddings"
# fetch-streams-v1: IngestSourceWorkflow's signal by which its fetch hands over a stored page
# (a `PageRef`) to load before the fetch ends.
PAGE_FETCHED_SIGNAL = "page_fetched"
TASK_QUEUES = (DEFAULT_QUEUE, ARCHIVE_QUEUE, EMBEDDINGS_QUEUE)


def ingest_workflow_id(source: str) -> str:
    return f"ingest/{source}"


def index_workflow_id(source: str, run_id: str) -> str:
    return f"index/{source}/{run_id}"


def embed_workflow_id(source: str, run_id: str) -> str:
    return f"embed/{source}/{run_id}"


class IngestSourceInput(BaseModel):
    source: str
    force_prune: bool = False
    # Extra options a webhook or operator passes to the extractor (e.g. one content path).
    options: dict[str, str] = Field(default_factory=dict)


class PageRef(BaseModel):
    kind: str
    key: str
    item_count: int
    # sha256 of the stored bytes, taken by the fetch that wrote them: an unchanged page is
    # then recognised (`mark_page_seen`) without reading it or its context pages back.
    # None: pages written before this field, and `learn load`'s (never skipped).
    sha256: str | None = None
    # Set by a fetch asked to skip unchanged pages (`FetchInput.skip_unchanged`): the page was
    # loaded before and its resources, intact, are now marked seen by this run (this many);
    # the run does not load it. None: load it (`load_page` checks its hash again).
    seen: int | None = None


class FetchInput(BaseModel):
    source: str
    run_id: str
    options: dict[str, str] = Field(default_factory=dict)
    # fetch-skips-v1: the fetch records the run (no `start_run` round trip before it) and,
    # once every page is in, marks the unchanged ones seen (`PageRef.seen`), so a re-run
    # loads only pages that changed. False (histories before the patch, `learn load`): neither.
    record_run: bool = False
    skip_unchanged: bool = False
    # fetch-prunes-v1: when every page is unchanged (nothing left to load), the fetch runs the
    # prune itself (`FetchResult.prune`, with `force_prune`): no prune round trip after it.
    prune_if_unchanged: bool = False
    force_prune: bool = False
    # fetch-finishes-v1: ... and when that prune leaves nothing to do (nothing unpublished, the
    # indexes in line), the fetch records the run's outcome too (`FetchResult.finished`).
    finish_if_idle: bool = False
    # fetch-streams-v1: each stored page of the fetch's first kind that reads no context page
    # and whose hash no earlier run recorded is signalled to the workflow (`PAGE_FETCHED_SIGNAL`)
    # as it lands, to load while the rest is fetched; such pages are never marked seen, and a
    # fetch that streamed any page neither prunes nor finishes the run.
    stream_pages: bool = False


class PruneResult(BaseModel):
    unpublished: int = 0
    refused: bool = False
    reason: str | None = None
    # After the prune: whether the source's index child has anything to do (True when unsure,
    # and in histories from before the field). rerun-idle-v1 skips the child when False.
    index_pending: bool = True


class FetchResult(BaseModel):
    pages: list[PageRef] = Field(default_factory=list)
    # The page list as a blob: transforms read their context pages from it (keeps inputs small).
    manifest_key: str | None = None
    complete: bool = True
    skipped_reason: str | None = None
    error: str | None = None
    # Set when the fetch pruned (`FetchInput.prune_if_unchanged`): the run does not prune again.
    prune: PruneResult | None = None
    # Set when the fetch also finished the idle run (`FetchInput.finish_if_idle`): its result,
    # as recorded; the run returns it.
    finished: IngestResult | None = None

    @property
    def item_count(self) -> int:
        return sum(p.item_count for p in self.pages)


class TransformInput(BaseModel):
    source: str
    run_id: str
    page: PageRef
    context: list[PageRef] = Field(default_factory=list)
    manifest_key: str | None = None


class TransformResult(BaseModel):
    batch_key: str
    resources: int = 0
    feed_items: int = 0
    content_files: int = 0
    view_events: int = 0
    quarantined: int = 0


class UpsertInput(BaseModel):
    source: str
    run_id: str
    batch_key: str


class UpsertResult(BaseModel):
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0


class PageLoadResult(UpsertResult):
    """`load_page` (page-load-v1): the upsert's counts, and what the page put into (or took
    out of) the keyword index."""

    indexed: int = 0
    deindexed: int = 0


class PruneInput(BaseModel):
    source: str
    run_id: str
    fetch_complete: bool
    force: bool = False
    # The run's extractor options: a run of some kinds (mitpe's courses, or its news and
    # events) prunes only what those kinds own. Empty (histories before this field): all kinds.
    options: dict[str, str] = Field(default_factory=dict)
    # Rows the run's pages wrote (inserted + updated): statistics are refreshed after a large
    # load only. None (histories before this field): the rows seen decide, as before.
    written: int | None = None


class IndexInput(BaseModel):
    source: str | None = None
    run_id: str | None = None
    batch_size: int = 500


class IndexResult(BaseModel):
    indexed: int = 0
    deindexed: int = 0


class EmbedInput(BaseModel):
    source: str | None = None
    run_id: str | None = None
    batch_size: int = 256


class EmbedResult(BaseModel):
    embedded: int = 0
    removed: int = 0
    unchanged: int = 0


class PromoteResult(BaseModel):
    """The embeddings workflow's promote step: which encoder the search service reads, how far
    the configured one has caught up, and an old encoder whose collections are to be dropped
    after `grace_seconds` (the service's time to follow the promotion)."""

    serving: str = ""
    configured: str = ""
    promoted: bool = False
    published: int = 0
    embedded: int = 0
    content_files_complete: bool = False
    retire: str | None = None
    grace_seconds: float = 0.0


class RetireInput(BaseModel):
    encoder: str


class RetireResult(BaseModel):
    dropped: list[str] = []


class IngestResult(BaseModel):
    source: str
    run_id: str
    outcome: str  # ok | skipped | prune_refused | failed_partial
    pages: int = 0
    items: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    unpublished: int = 0
    indexed: int = 0
    embedded: int = 0  # runs before embed-async-v1 only: newer runs leave embedding to the child
    # embed-async-v1: the embedding child started on its own queue and left running (its result
    # is the embedding count); None when no child started
    embed_workflow_id: str | None = None
    prune_refused_reason: str | None = None


# -- OCW unpublish (the OCW webhook's `site_uid` + `unpublished: true`) -------------------------


class OcwUnpublishInput(BaseModel):
    """UnpublishOcwCourseWorkflow: OCW Studio's site uid (a UUID, dashes or not)."""

    site_uid: str


class OcwUnpublishResult(BaseModel):
    """What the unpublish did. `outcome`: unpublished | already_unpublished | unknown."""

    site_uid: str
    outcome: str
    run_id: str | None = None
    readable_id: str | None = None
    content_files: int = 0  # content files unpublished by this run
    indexed: IndexResult | None = None  # the index child's result, when one ran
    embedded: EmbedResult | None = None  # the embed child's result, when one ran


# -- learn load: resources given as JSON lines (what `learn transform` prints) -------------------

# The source name load runs are recorded under (runs, quarantine); blobs live under raw/load/<id>.
LOAD_SOURCE = "load"


def load_workflow_id(load_id: str) -> str:
    return f"load/{load_id}"


def load_file_key(load_id: str) -> str:
    """Where `learn load` puts the file before starting the workflow (finish_run deletes it)."""
    return f"raw/{LOAD_SOURCE}/{load_id}/input.jsonl"


class LoadResourcesInput(BaseModel):
    """LoadResourcesWorkflow: a JSONL file already in the blob store, loaded page by page."""

    load_id: str  # also the run id the catalog records
    file_key: str
    file_name: str = ""  # names quarantined lines (`FILE:LINE`)
    lines_per_page: int = 500


class LoadSplitResult(BaseModel):
    pages: list[PageRef] = Field(default_factory=list)  # kind "jsonl", item_count = lines
    lines: int = 0


class LoadPageInput(BaseModel):
    load_id: str
    page: PageRef
    first_line: int  # 1-based number of the page's first line in the file
    file_name: str = ""


class LineProblem(BaseModel):
    line: int
    reason: str


class LoadPageResult(BaseModel):
    batch_key: str
    resources: int = 0
    other_items: int = 0  # feed items, content files, view events
    quarantined: int = 0
    problems: list[LineProblem] = Field(default_factory=list)  # the first few, for the console


class LoadResult(IngestResult):
    """An ingestion result (what finish_run records) plus the file's lines and its bad lines."""

    lines: int = 0
    problems: list[LineProblem] = Field(default_factory=list)  # capped; all are in quarantine


# FetchResult names IngestResult, defined after it
FetchResult.model_rebuild()
