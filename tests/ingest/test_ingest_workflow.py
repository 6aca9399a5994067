"""IngestSourceWorkflow on the time-skipping test server, activities replaced by name."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from learnflow.contracts import (
    PAGE_FETCHED_SIGNAL,
    EmbedInput,
    EmbedResult,
    FetchInput,
    FetchResult,
    IndexInput,
    IndexResult,
    IngestResult,
    IngestSourceInput,
    PageLoadResult,
    PageRef,
    PromoteResult,
    PruneInput,
    PruneResult,
    TransformInput,
    TransformResult,
    UpsertInput,
    UpsertResult,
)
from workflows.ingest import IngestSourceWorkflow
from workflows.search import EmbedResourcesWorkflow, IndexResourcesWorkflow

pytestmark = pytest.mark.temporal


class FakeActivities:
    """Stand-ins registered under the real activity names; they record what the workflow asked."""

    def __init__(
        self,
        pages: list[PageRef],
        complete: bool = True,
        refuse_prune: bool = False,
        unchanged: bool = False,
        index_pending: bool = True,
    ):
        self.pages = pages
        self.complete = complete
        self.refuse_prune = refuse_prune
        self.unchanged = unchanged  # every page skipped by hash, nothing pruned (a re-run)
        self.index_pending = index_pending  # what the prune says of the source's indexes
        self.calls: list[tuple[str, object]] = []
        self.embedded: EmbedResult | None = None  # the embed child's result (set by _run)

    def all(self):
        @activity.defn(name="start_run")
        async def start_run(req: FetchInput) -> None:
            self.calls.append(("start_run", req))

        @activity.defn(name="fetch_source_pages")
        async def fetch(req: FetchInput) -> FetchResult:
            self.calls.append(("fetch", req))
            result = FetchResult(
                pages=self.pages, complete=self.complete, manifest_key="raw/m/r/manifest.json"
            )
            unchanged = all(p.seen is not None for p in self.pages)
            if req.prune_if_unchanged and self.complete and unchanged:  # as the real fetch
                result.prune = PruneResult(index_pending=self.index_pending)
                if req.finish_if_idle and not self.index_pending:
                    result.finished = IngestResult(
                        source=req.source,
                        run_id=req.run_id,
                        outcome="ok",
                        pages=len(self.pages),
                        unchanged=sum(p.seen or 0 for p in self.pages),
                    )
            return result

        @activity.defn(name="transform_page")
        async def transform(req: TransformInput) -> TransformResult:
            self.calls.append(("transform", req))
            return TransformResult(
                batch_key=req.page.key + ".json", resources=req.page.item_count, quarantined=1
            )

        @activity.defn(name="upsert_batch")
        async def upsert(req: UpsertInput) -> UpsertResult:
            self.calls.append(("upsert", req))
            return UpsertResult(inserted=2, unchanged=1, quarantined=1)

        @activity.defn(name="load_page")
        async def load_page(req: TransformInput) -> PageLoadResult:
            self.calls.append(("load", req))
            if self.unchanged:
                return PageLoadResult(unchanged=req.page.item_count)
            return PageLoadResult(inserted=2, unchanged=1, quarantined=1, indexed=2)

        @activity.defn(name="prune_source")
        async def prune(req: PruneInput) -> PruneResult:
            self.calls.append(("prune", req))
            if self.refuse_prune or not req.fetch_complete:
                return PruneResult(refused=True, reason="fetch did not complete")
            return PruneResult(
                unpublished=0 if self.unchanged else 1, index_pending=self.index_pending
            )

        @activity.defn(name="index_pending")
        async def index(req: IndexInput) -> IndexResult:
            self.calls.append(("index", req))
            return IndexResult(indexed=4)

        @activity.defn(name="embed_pending")
        async def embed(req: EmbedInput) -> EmbedResult:
            self.calls.append(("embed", req))
            return EmbedResult(embedded=3)

        @activity.defn(name="index_content_files")
        async def index_files(req: IndexInput) -> IndexResult:
            self.calls.append(("index_content_files", req))
            return IndexResult()

        @activity.defn(name="embed_content_files")
        async def embed_files(req: EmbedInput) -> EmbedResult:
            self.calls.append(("embed_content_files", req))
            return EmbedResult()

        @activity.defn(name="promote_embeddings")
        async def promote(req: EmbedInput) -> PromoteResult:
            self.calls.append(("promote_embeddings", req))
            return PromoteResult(serving="hashidf768", configured="hashidf768")

        @activity.defn(name="finish_run")
        async def finish(req: IngestResult) -> None:
            self.calls.append(("finish", req))

        return [
            start_run,
            fetch,
            transform,
            upsert,
            load_page,
            prune,
            index,
            embed,
            index_files,
            embed_files,
            promote,
            finish,
        ]


async def _run(env, fakes: FakeActivities, **kw) -> IngestResult:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    acts = fakes.all()
    async with (
        Worker(
            env.client,
            task_queue=queue,
            workflows=[IngestSourceWorkflow, IndexResourcesWorkflow],
            activities=acts,
        ),
        Worker(
            env.client, task_queue="embeddings", workflows=[EmbedResourcesWorkflow], activities=acts
        ),
    ):
        result = await env.client.execute_workflow(
            IngestSourceWorkflow.run,
            IngestSourceInput(source="mitxonline", **kw),
            id=f"ingest/mitxonline-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
        )
        if result.embed_workflow_id:  # the abandoned embed child: wait for it while its worker runs
            child = env.client.get_workflow_handle(
                result.embed_workflow_id, result_type=EmbedResult
            )
            fakes.embedded = await child.result()
        return result


async def test_loads_kinds_in_fetch_order_and_passes_only_keys(time_skipping_env):
    pages = [
        PageRef(kind="courses", key="raw/m/r/00000-courses", item_count=3),
        PageRef(kind="programs", key="raw/m/r/00001-programs", item_count=2),
        PageRef(kind="courses", key="raw/m/r/00002-courses", item_count=1),
    ]
    fakes = FakeActivities(pages)
    result = await _run(time_skipping_env, fakes)
    # page-load-v1: one activity per page (transform → upsert → keyword index), no batch step
    assert not [c for c in fakes.calls if c[0] in ("transform", "upsert")]
    loaded = [c[1].page.key for c in fakes.calls if c[0] == "load"]
    # every courses page (loaded together in one window) before any programs page, so programs
    # can link their courses
    assert set(loaded[:2]) == {"raw/m/r/00000-courses", "raw/m/r/00002-courses"}
    assert loaded[2:] == ["raw/m/r/00001-programs"]
    # context travels as the manifest's key, never as a list of pages or their bytes
    inputs = [c[1] for c in fakes.calls if c[0] == "load"]
    assert all(i.manifest_key == "raw/m/r/manifest.json" and not i.context for i in inputs)
    order = [c[0] for c in fakes.calls]
    assert order.index("prune") > max(i for i, n in enumerate(order) if n == "load")
    assert order.index("index") > order.index("prune") and order.index("embed") > order.index(
        "index"
    )
    assert result.outcome == "ok"
    assert (result.inserted, result.unchanged, result.quarantined, result.unpublished) == (
        6,
        3,
        3,
        1,
    )
    # embedding is off the run's critical path: the run ends once the catalog is indexed, the
    # embed child it started (and left running) does the embedding. Indexed: the pages' own
    # (2 each) and the index child's (4).
    assert (result.indexed, result.embedded, result.items) == (10, 0, 6)
    assert result.embed_workflow_id and fakes.embedded.embedded == 3
    # the embed child ends with the promote step, after its passes
    assert order.index("promote_embeddings") > order.index("embed_content_files")
    finished = next(c[1] for c in fakes.calls if c[0] == "finish")
    assert finished.embed_workflow_id == result.embed_workflow_id


async def test_incomplete_fetch_never_prunes(time_skipping_env):
    fakes = FakeActivities([PageRef(kind="courses", key="raw/k", item_count=1)], complete=False)
    result = await _run(time_skipping_env, fakes)
    prune = next(c[1] for c in fakes.calls if c[0] == "prune")
    assert prune.fetch_complete is False
    assert result.outcome == "prune_refused" and result.unpublished == 0


async def test_force_prune_is_passed_through(time_skipping_env):
    fakes = FakeActivities([PageRef(kind="courses", key="raw/k", item_count=1)])
    await _run(time_skipping_env, fakes, force_prune=True)
    prune = next(c[1] for c in fakes.calls if c[0] == "prune")
    assert prune.force is True


@pytest.mark.parametrize("index_pending", [False, True])
async def test_an_unchanged_rerun_starts_no_child_with_nothing_to_do(
    time_skipping_env, index_pending
):
    """rerun-idle-v1: every page skipped, nothing pruned: no embed child; an index child only
    when the prune found the source's indexes lagging (an earlier run's leftovers)."""
    pages = [PageRef(kind="courses", key="raw/k", item_count=3)]
    fakes = FakeActivities(pages, unchanged=True, index_pending=index_pending)
    result = await _run(time_skipping_env, fakes)
    assert result.outcome == "ok" and (result.inserted, result.updated, result.unchanged) == (
        0,
        0,
        3,
    )
    names = [c[0] for c in fakes.calls]
    assert ("index" in names) is index_pending
    assert "embed" not in names and result.embed_workflow_id is None
    assert names[-1] == "finish"
    prune = next(c[1] for c in fakes.calls if c[0] == "prune")
    assert prune.written == 0  # nothing written: the prune refreshes no statistics


async def test_pages_the_fetch_marked_seen_are_not_loaded(time_skipping_env):
    """fetch-skips-v1: the fetch records the run and marks unchanged pages seen; the run loads
    only the others, and counts the skipped pages' resources as unchanged."""
    pages = [
        PageRef(kind="courses", key="raw/m/r/00000-courses", item_count=3, seen=3),
        PageRef(kind="courses", key="raw/m/r/00001-courses", item_count=2),
        PageRef(kind="programs", key="raw/m/r/00002-programs", item_count=4, seen=4),
    ]
    fakes = FakeActivities(pages, index_pending=False)
    result = await _run(time_skipping_env, fakes)
    names = [c[0] for c in fakes.calls]
    assert "start_run" not in names and names[0] == "fetch"
    fetch = fakes.calls[0][1]
    assert fetch.record_run and fetch.skip_unchanged
    assert [c[1].page.key for c in fakes.calls if c[0] == "load"] == ["raw/m/r/00001-courses"]
    # the loaded page's 2 inserted and 1 unchanged, plus the 3 + 4 the fetch marked seen
    assert (result.inserted, result.unchanged, result.pages) == (2, 8, 3)


@pytest.mark.parametrize("force_prune", [False, True])
async def test_an_unchanged_rerun_is_one_fetch(time_skipping_env, force_prune):
    """Every page marked seen by the fetch, which then prunes (fetch-prunes-v1) and, nothing
    pruned and the indexes in line, records the outcome (fetch-finishes-v1): no other
    activity, no child; the run returns what the fetch recorded."""
    pages = [PageRef(kind="courses", key=f"raw/m/r/0000{n}-courses", item_count=2, seen=2)
             for n in range(3)]  # fmt: skip
    fakes = FakeActivities(pages, unchanged=True, index_pending=False)
    result = await _run(time_skipping_env, fakes, force_prune=force_prune)
    assert [c[0] for c in fakes.calls] == ["fetch"]
    fetch = fakes.calls[0][1]
    assert fetch.prune_if_unchanged and fetch.force_prune is force_prune and fetch.finish_if_idle
    assert result.run_id == fetch.run_id and result.pages == 3
    assert result.outcome == "ok" and (result.inserted, result.updated, result.unchanged) == (
        0,
        0,
        6,
    )
    assert result.embed_workflow_id is None


async def test_a_fetch_that_pruned_leaves_lagging_indexes_to_the_index_child(time_skipping_env):
    """Every page unchanged, but the prune found the indexes lagging: the fetch does not
    finish the run; the index child runs, then finish_run records the outcome."""
    pages = [PageRef(kind="courses", key="raw/m/r/00000-courses", item_count=2, seen=2)]
    fakes = FakeActivities(pages, unchanged=True, index_pending=True)
    result = await _run(time_skipping_env, fakes)
    names = [c[0] for c in fakes.calls]
    assert names[0] == "fetch" and "prune" not in names and "load" not in names
    assert "index" in names and names[-1] == "finish"
    assert result.outcome == "ok" and result.unchanged == 2 and result.indexed == 4


class StreamingFakes(FakeActivities):
    """A fetch that hands pages over as the real one does (fetch-streams-v1): it signals them
    to its workflow (`PAGE_FETCHED_SIGNAL`) and ends only once a streamed page is loading.
    `attempts`: what each attempt of the fetch streams, (index into `pages`, sha256) pairs;
    every attempt but the last fails after streaming (a transient error: Temporal retries).
    `hold`: (held, until): the fake load of the (key, sha256) `held` ends only once the load
    of the page key `until` started."""

    def __init__(self, pages, attempts, hold=None):
        super().__init__(pages, index_pending=False)
        self.attempts = attempts
        self.hold = hold
        self.loading = asyncio.Event()
        self.released = asyncio.Event()

    def all(self):
        @activity.defn(name="fetch_source_pages")
        async def fetch(req: FetchInput) -> FetchResult:
            attempt = activity.info().attempt
            self.calls.append(("fetch", req))
            info = activity.info()
            handle = activity.client().get_workflow_handle(
                info.workflow_id, run_id=info.workflow_run_id
            )
            for n, sha in self.attempts[attempt - 1]:
                page = self.pages[n].model_copy(update={"sha256": sha})
                await handle.signal(PAGE_FETCHED_SIGNAL, page)
            if attempt < len(self.attempts):
                await self.loading.wait()
                raise ApplicationError("upstream reset the connection")
            await self.loading.wait()  # returns only while (or after) a streamed page loads
            self.calls.append(("fetch_end", attempt))
            # what the marking may say of a streamed page whose load recorded it: seen
            pages = [p.model_copy(update={"seen": p.item_count}) for p in self.pages[:1]]
            return FetchResult(pages=pages + self.pages[1:], manifest_key="raw/m/r/manifest.json")

        @activity.defn(name="load_page")
        async def load_page(req: TransformInput) -> PageLoadResult:
            self.calls.append(("load", req))
            self.loading.set()
            if self.hold and req.page.key == self.hold[1]:
                self.released.set()
            if self.hold and (req.page.key, req.page.sha256) == self.hold[0]:
                await self.released.wait()
            self.calls.append(("load_end", (req.page.key, req.page.sha256)))
            return PageLoadResult(inserted=2, unchanged=1, quarantined=1, indexed=2)

        replaced = {"fetch_source_pages", "load_page"}
        kept = [
            a
            for a in super().all()
            if activity._Definition.must_from_callable(a).name not in replaced
        ]
        return [*kept, fetch, load_page]


_STREAMED_PAGES = [
    PageRef(kind="courses", key="raw/m/r/00000-courses", item_count=3, sha256="a0"),
    PageRef(kind="courses", key="raw/m/r/00001-courses", item_count=2, sha256="a1"),
    PageRef(kind="programs", key="raw/m/r/00002-programs", item_count=4, sha256="a2"),
]


def _loads(fakes: FakeActivities) -> list[tuple[str, str | None]]:
    return [(c[1].page.key, c[1].page.sha256) for c in fakes.calls if c[0] == "load"]


async def test_streamed_pages_load_while_the_fetch_runs(time_skipping_env):
    """fetch-streams-v1: the pages the fetch hands over load before it ends, once each; what
    the fetch then says of them is not counted again; the later kind loads after them."""
    fakes = StreamingFakes(_STREAMED_PAGES, attempts=[[(0, "a0"), (1, "a1")]])
    result = await _run(time_skipping_env, fakes)
    assert fakes.calls[0][1].stream_pages
    names = [c[0] for c in fakes.calls]
    assert names.index("load") < names.index("fetch_end")  # loading while the fetch ran
    loads = _loads(fakes)
    assert sorted(loads[:2]) == [("raw/m/r/00000-courses", "a0"), ("raw/m/r/00001-courses", "a1")]
    assert loads[2:] == [("raw/m/r/00002-programs", "a2")]
    # the programs page starts once both course pages' loads ended
    programs_start = next(
        i for i, c in enumerate(fakes.calls) if c[0] == "load" and c[1].page.kind == "programs"
    )
    ends = [i for i, c in enumerate(fakes.calls) if c[0] == "load_end"]
    assert len(ends) == 3 and ends[1] < programs_start
    # three loads of (2 inserted, 1 unchanged); the fetch's seen=3 for page 0 is not added
    assert (result.inserted, result.unchanged, result.indexed, result.pages) == (6, 3, 6, 3)


async def test_a_retried_fetch_does_not_load_a_streamed_page_twice(time_skipping_env):
    """The first attempt streamed page 0 and failed; the second streams page 0 again (same
    bytes) and page 1: page 0 loads once."""
    attempts = [[(0, "a0")], [(0, "a0"), (1, "a1")]]
    fakes = StreamingFakes(_STREAMED_PAGES, attempts=attempts)
    result = await _run(time_skipping_env, fakes)
    assert [c[0] for c in fakes.calls].count("fetch") == 2
    assert sorted(_loads(fakes)) == sorted((p.key, p.sha256) for p in _STREAMED_PAGES)
    assert result.inserted == 6


async def test_changed_bytes_of_a_streamed_page_load_after_its_earlier_load(time_skipping_env):
    """The second attempt streams page 0 with other bytes, then page 1, while the first
    attempt's load of page 0 still runs (it ends once page 1 loads): the new bytes load too,
    but only once that load ended (never two loads of one page at once, where the older
    could write last)."""
    attempts = [[(0, "a0")], [(0, "b0"), (1, "a1")]]
    hold = (("raw/m/r/00000-courses", "a0"), "raw/m/r/00001-courses")
    fakes = StreamingFakes(_STREAMED_PAGES, attempts=attempts, hold=hold)
    await _run(time_skipping_env, fakes)
    loads = _loads(fakes)
    assert ("raw/m/r/00000-courses", "a0") in loads and ("raw/m/r/00000-courses", "b0") in loads
    older_end = fakes.calls.index(("load_end", ("raw/m/r/00000-courses", "a0")))
    newer_start = next(
        i
        for i, c in enumerate(fakes.calls)
        if c[0] == "load" and (c[1].page.key, c[1].page.sha256) == ("raw/m/r/00000-courses", "b0")
    )
    assert older_end < newer_start
