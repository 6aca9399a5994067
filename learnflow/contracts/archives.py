"""Course-archive workflow and activity inputs and outputs (OLX, Canvas, OCW, retire/purge).

The webhook service builds `ArchiveWebhookInput` / `DeleteCourseContentInput`; the workflows in
`workflows/archives.py` and the activities in `activities/archives.py` take and return the rest.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ArchiveWebhookInput(BaseModel):
    """IngestArchiveWorkflow: MIT Learn's ingest_edx_run_archive / ingest_canvas_course."""

    source: str
    content_path: str
    run_id: str | None = None
    overwrite: bool = False


class DeleteCourseContentInput(BaseModel):
    """DeleteCourseContentWorkflow: resources whose readable_id starts with course_id (Canvas:
    `f"{course_id}-"`). course_id is literal text: escape LIKE wildcards when matching."""

    source: str
    course_id: str


class ArchiveRef(BaseModel):
    """The newest archive of one course in the bucket."""

    course_id: str
    key: str
    last_modified: datetime | None = None


class DiscoverArchivesInput(BaseModel):
    source: str
    after_course: str | None = None  # resume cursor: course ids are listed in sorted order
    limit: int = 100


class DiscoverArchivesResult(BaseModel):
    source: str  # the canonical (ETL) source name
    archives: list[ArchiveRef] = Field(default_factory=list)
    more: bool = False
    courses_total: int = 0


class FileFailureOut(BaseModel):
    key: str
    reason: str


class ArchiveIngestResult(BaseModel):
    """What happened to one archive. `outcome`:
    loaded | empty | unchanged_key | unchanged_checksum | no_run | retired | rejected |
    all_failed | missing."""

    source: str
    key: str
    outcome: str
    course_id: str | None = None
    run_id: str | None = None
    readable_id: str | None = None
    reason: str | None = None
    checksum: str | None = None
    loaded: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    reused: int = 0
    textless: int = 0
    extractor_calls: int = 0
    retired: int = 0  # unpublished (soft) or, for Canvas, deleted
    failed: int = 0
    failures: list[FileFailureOut] = Field(default_factory=list)  # the first few, for operators
    resumed_from_chunk: int = 0
    resources_upserted: int = 0  # Canvas/OCW create or update their course resource
    index_workflow_id: str | None = None  # started when this ran on its own (webhook)


class ArchivesTotals(BaseModel):
    courses: int = 0
    outcomes: dict[str, int] = Field(default_factory=dict)
    loaded: int = 0
    extractor_calls: int = 0
    retired: int = 0
    failed: int = 0
    already_running: int = 0
    resources: int = 0

    def add(self, r: ArchiveIngestResult) -> None:
        self.courses += 1
        self.resources += r.resources_upserted
        self.outcomes[r.outcome] = self.outcomes.get(r.outcome, 0) + 1
        self.loaded += r.loaded
        self.extractor_calls += r.extractor_calls
        self.retired += r.retired
        self.failed += r.failed


class IngestArchivesInput(BaseModel):
    """One run of one archive source. The schedule passes only `source` (canvas, edx/mit_edx,
    mitxonline, xpro, oll); the rest is for operators, tests and continue-as-new."""

    source: str
    overwrite: bool = False
    max_concurrent: int = 4
    page_size: int = 100  # courses per discovery page; the workflow continues as new after each
    after_course: str | None = None
    totals: ArchivesTotals = Field(default_factory=ArchivesTotals)
    generation: int = 0  # how many times this run continued as new
    index: bool = True


class IngestArchivesResult(BaseModel):
    source: str
    totals: ArchivesTotals
    generations: int = 0
    index_workflow_id: str | None = None


class OcwSiteInput(BaseModel):
    prefix: str  # courses/<slug>
    overwrite: bool = False


class DiscoverOcwInput(BaseModel):
    prefixes: list[str] = Field(default_factory=list)  # empty: every site under courses/


class DiscoverOcwResult(BaseModel):
    prefixes: list[str] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list)


class IngestOcwResult(BaseModel):
    totals: ArchivesTotals
    rejected_prefixes: list[str] = Field(default_factory=list)
    index_workflow_id: str | None = None


class DeleteCourseContentResult(BaseModel):
    source: str
    course_id: str
    outcome: str  # deleted | refused | nothing
    reason: str | None = None
    resources: int = 0
    content_files: int = 0
    index_workflow_id: str | None = None


class PurgeContentFilesInput(BaseModel):
    retention_days: int = 14
    batch_size: int = 1000


class PurgeContentFilesResult(BaseModel):
    deleted: int = 0
