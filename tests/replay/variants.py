"""Edited copies of IngestSourceWorkflow, registered under its name, for the replay tests.

`FetchBeforeStartRun` changes the command order without a patch: replaying an old history must
fail. `PatchedFetchBeforeStartRun` makes the same change behind `workflow.patched()`: old
histories (no marker) take the old path and still replay.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from learnflow.contracts import FetchInput, FetchResult, IngestResult, IngestSourceInput
    from workflows.ingest import IngestSourceWorkflow


async def _probe_fetch(req: IngestSourceInput) -> None:
    await workflow.execute_activity(
        "fetch_source_pages",
        FetchInput(source=req.source, run_id="probe", options=req.options),
        result_type=FetchResult,
        start_to_close_timeout=timedelta(minutes=1),
    )


@workflow.defn(name="IngestSourceWorkflow")
class FetchBeforeStartRun(IngestSourceWorkflow):
    """Calls fetch_source_pages before start_run: a different first command."""

    @workflow.run
    async def run(self, req: IngestSourceInput) -> IngestResult:
        await _probe_fetch(req)
        return await super().run(req)


@workflow.defn(name="IngestSourceWorkflow")
class PatchedFetchBeforeStartRun(IngestSourceWorkflow):
    """The same edit, shipped the right way: new runs take it, old histories do not."""

    @workflow.run
    async def run(self, req: IngestSourceInput) -> IngestResult:
        if workflow.patched("probe-fetch-before-start-run"):
            await _probe_fetch(req)
        return await super().run(req)
