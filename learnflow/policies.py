"""Activity retry policies, defined once for every workflow.

Changing a value here is replay-safe (a retry policy is not part of a workflow's command
sequence); changing which activities a workflow schedules is not.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from learnflow.errors import NON_RETRYABLE

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

# A long activity heartbeats at least this often (its heartbeat carries the resume cursor).
HEARTBEAT_TIMEOUT = timedelta(minutes=2)

ARCHIVE_SHORT = {"start_to_close_timeout": timedelta(minutes=5), "retry_policy": ARCHIVE_RETRY}
# One course: download, unpack, Tika. Heartbeats carry the resume cursor (the chunk index).
ARCHIVE_LONG = {
    "start_to_close_timeout": timedelta(hours=2),
    "heartbeat_timeout": HEARTBEAT_TIMEOUT,
    "retry_policy": ARCHIVE_RETRY,
}
