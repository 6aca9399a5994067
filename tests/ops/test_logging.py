"""Structured JSON logs: one object per line, Temporal ids on lines logged inside activities
(structlog and temporalio's stdlib activity.logger alike), secrets never printed."""

from __future__ import annotations

import dataclasses
import io
import json
import logging

import pytest
import structlog
from pydantic import SecretStr
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from learnflow.logging import REDACTED, configure_logging


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    configure_logging(stream=stream)
    yield stream
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "learnflow"]
    structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_secret_like_keys_and_values_are_redacted(log_stream):
    structlog.get_logger("test").info(
        "source.configured",
        api_key="sk-live-123",
        edx_api_client_secret="hunter2",
        headers={"Authorization": "JWT abc.def.ghi", "Accept": "application/json"},
        database_url="postgresql://learn:s3cret@db:5432/learn",
        litellm_api_key=SecretStr("sk-other"),
        note="sent Bearer abcdef123456 upstream",
        source="edx",
    )
    (line,) = _lines(log_stream)
    text = log_stream.getvalue()
    for secret in ("sk-live-123", "hunter2", "abc.def.ghi", "s3cret", "sk-other", "abcdef123456"):
        assert secret not in text
    assert line["api_key"] == REDACTED
    assert line["edx_api_client_secret"] == REDACTED
    assert line["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert line["database_url"] == f"postgresql://learn:{REDACTED}@db:5432/learn"
    assert line["litellm_api_key"] == REDACTED
    assert line["note"] == f"sent Bearer {REDACTED} upstream"
    assert line["source"] == "edx"  # ordinary fields untouched
    assert line["level"] == "info" and line["logger"] == "test" and line["timestamp"]


async def test_lines_logged_in_an_activity_carry_its_ids(log_stream):
    @activity.defn(name="probe_activity")
    async def probe(n: int) -> int:
        structlog.get_logger("activities.probe").info("probe.structlog", n=n)
        activity.logger.info("probe.stdlib", extra={"token": "tok-123"})
        return n

    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, workflow_id="ingest/edx", activity_id="7", activity_type="probe_activity"
    )
    assert await env.run(probe, 3) == 3
    lines = {line["event"]: line for line in _lines(log_stream)}
    for name in ("probe.structlog", "probe.stdlib"):
        line = lines[name]
        assert line["workflow_id"] == "ingest/edx", line
        assert line["activity_id"] == "7"
        assert line["activity_type"] == "probe_activity"
    assert lines["probe.stdlib"]["token"] == REDACTED
    assert "tok-123" not in log_stream.getvalue()


def test_stdlib_loggers_share_the_json_format(log_stream):
    logging.getLogger("temporalio.worker").warning("poll failed for %s", "default")
    (line,) = _lines(log_stream)
    assert line == line | {"event": "poll failed for default", "level": "warning"}
