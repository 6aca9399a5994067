"""Which workflow each webhook starts, on which task queue: the one place these names live.

Workflows are started by type name so this package never imports workflow code (the worker owns
it). Ids are readable and deterministic: `webhook/<kind>/<business key>`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from learnflow.contracts import ARCHIVE_QUEUE, DEFAULT_QUEUE


@dataclass(frozen=True)
class Target:
    workflow: str
    task_queue: str
    id_prefix: str


INGEST_ARCHIVE = Target("IngestArchiveWorkflow", ARCHIVE_QUEUE, "webhook/content_files")
DELETE_COURSE_CONTENT = Target(
    "DeleteCourseContentWorkflow", DEFAULT_QUEUE, "webhook/content_files_delete"
)
INGEST_OVS_VIDEO = Target("IngestOvsVideoWorkflow", DEFAULT_QUEUE, "webhook/ovs_videos")
DELETE_OVS_VIDEO = Target("DeleteOvsVideoWorkflow", DEFAULT_QUEUE, "webhook/ovs_videos_delete")
# OCW publish: `IngestOcwWorkflow` takes the same `IngestSourceInput(source="ocw", options=
# {"prefixes": ...})` and loads each site's course and content files on the archive queue.
INGEST_OCW = Target("IngestOcwWorkflow", ARCHIVE_QUEUE, "webhook/ocw")
INGEST_SOURCE = INGEST_OCW  # the name app.py uses
UNPUBLISH_OCW_COURSE = Target("UnpublishOcwCourseWorkflow", DEFAULT_QUEUE, "webhook/ocw_unpublish")

ALL_TARGETS = (
    INGEST_ARCHIVE,
    DELETE_COURSE_CONTENT,
    INGEST_OVS_VIDEO,
    DELETE_OVS_VIDEO,
    INGEST_SOURCE,
    UNPUBLISH_OCW_COURSE,
)

# Temporal's default limit on a workflow id is 1000 bytes; stay well under it.
_MAX_KEY_CHARS = 300


def digest(data: str | bytes, length: int = 16) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:length]


def workflow_id(target: Target, *parts: str) -> str:
    """`<prefix>/<part>/<part>`; an over-long key keeps its head and gains a digest of the whole."""
    key = "/".join(parts)
    if len(key.encode()) > _MAX_KEY_CHARS:
        key = f"{key[:200]}~{digest(key, 32)}"
    return f"{target.id_prefix}/{key}"
