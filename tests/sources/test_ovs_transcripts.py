"""OVS transcripts end to end: the `ingest/ovs-transcripts` schedule's option fetches each
video's English captions (WebVTT, built from the format for this test: nothing is recorded)
from the fixture server, the text loads as the video's transcript, and a query made of words
only spoken in the video finds it through gRPC in keyword and hybrid mode. A run without the
option keeps the transcripts; an OVS webhook loads the posted video's captions too."""

from __future__ import annotations

import json

import pytest

from devstack.harness.fixture_server import Response
from learnflow.contracts import UpsertResult
from learnflow.contracts.ovs import OvsVideoWebhookInput
from search_service.pb import search_pb2
from sources import all_schedules, ovs
from tests.conftest import TEST_JSON, unique_id
from tests.sources.conftest import ingest, search_ids, stored_transcript

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.grpc]

VIDEOS = json.loads((TEST_JSON / "ovs_videos.json").read_bytes())["results"]
MODES = {"keyword": search_pb2.SEARCH_MODE_KEYWORD, "hybrid": search_pb2.SEARCH_MODE_HYBRID}


def built_vtt(spoken: str) -> bytes:
    """A WebVTT file (W3C WebVTT: header, cue id, timing line, cue text)."""
    return (
        "WEBVTT\n\n1\n00:00:00.000 --> 00:00:04.000\nIn this lecture we meet\n\n"
        f"2\n00:00:04.000 --> 00:00:08.000\n<v Lecturer>the {spoken} today.\n"
    ).encode()


def _serve_captions(server, video: dict, spoken: str) -> str:
    caption = ovs.english_caption_url(video, ovs.settings_for())
    assert caption, "the recorded video lists English captions"
    path = "/" + caption.split("/", 3)[3]
    server.route(path, Response(200, built_vtt(spoken), {"Content-Type": "text/vtt"}))
    return path


async def test_schedule_run_and_webhook_load_searchable_transcripts(
    sources_app, sources_server, monkeypatch
):
    app, server = sources_app, sources_server.server
    monkeypatch.setenv("OVS_CAPTIONS_BASE_URL", server.base_url)
    word = f"zymurgical{unique_id('w').replace('-', '')[-6:]}"
    video = next(v for v in VIDEOS if ovs.is_loadable(v))
    path = _serve_captions(server, video, word)

    # The schedule's own input: its options are what a scheduled run passes.
    (schedule,) = [s for s in all_schedules() if s.schedule_id == "ingest/ovs-transcripts"]
    result = await ingest(app, "ovs", **schedule.arg.options)
    assert result.outcome == "ok", result
    assert server.hits(path) == 1
    assert await stored_transcript(app, "ovs", video["key"]) == (
        f"In this lecture we meet the {word} today."
    )
    for name, mode in MODES.items():
        assert video["key"] in await search_ids(app.grpc_address, word, mode), name

    # A run without the option fetches nothing and keeps the transcript.
    plain = await ingest(app, "ovs")
    assert plain.outcome == "ok" and (plain.inserted, plain.updated) == (0, 0), plain
    assert server.hits(path) == 1 and word in (
        await stored_transcript(app, "ovs", video["key"]) or ""
    )

    # The webhook: a posted video's captions load with it and are searchable.
    key = unique_id("ovs").replace("-", "")[:20].ljust(32, "0")
    posted = json.loads(json.dumps(video).replace(video["key"], key))  # its own media paths
    posted["title"] = f"Webhook lecture {key[:6]}"
    spoken = f"quasicrystal{key[:6]}"
    webhook_path = _serve_captions(server, posted, spoken)
    await app.client.execute_workflow(
        "IngestOvsVideoWorkflow",
        OvsVideoWebhookInput(key=key, video=posted),
        id=f"webhook/{unique_id('ovs-video')}",
        task_queue="default",
        result_type=UpsertResult,
    )
    assert server.hits(webhook_path) == 1
    assert spoken in (await stored_transcript(app, "ovs", key) or "")
    for name, mode in MODES.items():
        assert key in await search_ids(app.grpc_address, spoken, mode), name
