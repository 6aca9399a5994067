"""Activity retry policies and timeouts, defined once for every workflow (`**POLICY` in a call).

Changing a value here is replay-safe (a retry policy is not part of a workflow's command
sequence); changing which activities a workflow schedules is not.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from learnflow.errors import NON_RETRYABLE
from learnflow.settings import get_settings

# A long activity heartbeats at least this often (its heartbeat carries the resume cursor), and a
# worker killed mid-activity is noticed this long after its last heartbeat. A setting, read once
# when the workflows are imported (a heartbeat timeout is no part of the command sequence).
HEARTBEAT_TIMEOUT = timedelta(seconds=get_settings().activity_heartbeat_timeout_seconds)

# Source steps (fetch, transform, load, prune) and OVS: transient failures (network, a database
# restart) retry with backoff; the typed kinds in learnflow.errors fail at once.
SOURCE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=list(NON_RETRYABLE),
)

# Index and embed passes: idempotent over changed rows, so they retry until the store is back.
INDEX_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=list(NON_RETRYABLE),
)

# Course archives: a download + unpack + Tika attempt is long, so fewer, slower retries.
ARCHIVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=6,
    non_retryable_error_types=list(NON_RETRYABLE),
)

ARCHIVE_SHORT = {"start_to_close_timeout": timedelta(minutes=5), "retry_policy": ARCHIVE_RETRY}
# One course: download, unpack, Tika. Heartbeats carry the resume cursor (the chunk index).
ARCHIVE_LONG = {
    "start_to_close_timeout": timedelta(hours=2),
    "heartbeat_timeout": HEARTBEAT_TIMEOUT,
    "retry_policy": ARCHIVE_RETRY,
}

# Catalog ingestion (IngestSourceWorkflow, LoadResourcesWorkflow): short steps, the long fetch.
SOURCE_STEP = {"start_to_close_timeout": timedelta(minutes=10), "retry_policy": SOURCE_RETRY}
# One page's load (transform → upsert → keyword index): it heartbeats while it runs, so a worker
# killed mid-page is noticed after HEARTBEAT_TIMEOUT and another worker retries the page (the
# load is idempotent), instead of after the whole start-to-close timeout.
PAGE_LOAD = {**SOURCE_STEP, "heartbeat_timeout": HEARTBEAT_TIMEOUT}
SOURCE_FETCH = {
    "start_to_close_timeout": timedelta(minutes=60),
    "heartbeat_timeout": HEARTBEAT_TIMEOUT,
    "retry_policy": SOURCE_RETRY,
}
# One webhook's item (OVS video upsert / unpublish).
WEBHOOK_STEP = {"start_to_close_timeout": timedelta(minutes=2), "retry_policy": SOURCE_RETRY}
# Index and embed passes over changed rows (heartbeat: the last row id done).
INDEX_PASS = {
    "start_to_close_timeout": timedelta(minutes=30),
    "heartbeat_timeout": HEARTBEAT_TIMEOUT,
    "retry_policy": INDEX_RETRY,
}
EMBED_PASS = {
    "start_to_close_timeout": timedelta(minutes=60),
    "heartbeat_timeout": HEARTBEAT_TIMEOUT,
    "retry_policy": INDEX_RETRY,
}
# The embeddings workflow's promote and retire steps (a few queries; dropping collections).
PROMOTE_STEP = {"start_to_close_timeout": timedelta(minutes=5), "retry_policy": INDEX_RETRY}
# The daily purge of content files unpublished past the retention.
ARCHIVE_PURGE = {
    "start_to_close_timeout": timedelta(minutes=30),
    "heartbeat_timeout": HEARTBEAT_TIMEOUT,
    "retry_policy": ARCHIVE_RETRY,
}
