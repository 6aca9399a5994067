"""The typed heartbeat progress: what a long activity heartbeats is what its retry reads back,
and heartbeats of the styles before it (dict, after_id, (after_id, counts)) still resume."""

from __future__ import annotations

import dataclasses

import pytest
from temporalio.testing import ActivityEnvironment

from activities.progress import Progress, heartbeat, resumed


def _env(details: list) -> tuple[ActivityEnvironment, list]:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_details=details)
    beats: list = []
    env.on_heartbeat = lambda *args: beats.append(args)
    return env, beats


def test_a_heartbeat_round_trips_through_resume():
    env, beats = _env([])
    sent = Progress(stage="extract", key="k.tar.gz", checksum="abc", next_chunk=3, chunks=9)
    env.run(heartbeat, sent)
    (detail,) = beats[-1]
    assert isinstance(detail, dict) and detail["next_chunk"] == 3
    env2, _ = _env([detail])
    back = env2.run(resumed)
    assert back == sent


@pytest.mark.parametrize(
    ("details", "after_id", "counts", "next_chunk"),
    [
        ([{"stage": "extract", "checksum": "c", "next_chunk": 4, "chunks": 7}], None, {}, 4),
        ([42, {"embedded": 5, "removed": 1, "unchanged": 0}], 42, {"embedded": 5}, 0),
        ([17], 17, {}, 0),
        ([None, {"embedded": 2}], None, {"embedded": 2}, 0),
        ([], None, {}, 0),
    ],
)
def test_older_heartbeat_styles_resume(details, after_id, counts, next_chunk):
    env, _ = _env(details)
    got = env.run(resumed)
    assert got.after_id == after_id
    assert counts.items() <= got.counts.items()
    assert got.next_chunk == next_chunk


def test_outside_an_activity_nothing_resumes_and_heartbeat_is_a_no_op():
    heartbeat(Progress(stage="x"))
    assert resumed() == Progress()
