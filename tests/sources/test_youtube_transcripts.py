"""YouTube captions end to end: the `ingest/youtube` schedule's own options fetch each loaded
video's English captions (WebVTT, built from the format for this test: nothing is recorded) from
the fixture server's timedtext endpoint, the text loads as the video's transcript, and a query
made of words only spoken in the video finds it through gRPC in keyword and hybrid mode. A run
without the option keeps the transcript."""

from __future__ import annotations

import json

import pytest

from devstack.harness.fixture_server import Request, Response
from search_service.pb import search_pb2
from sources import all_schedules, youtube
from tests.conftest import unique_id
from tests.sources.conftest import YT, ingest, search_ids, stored_transcript

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.grpc]

MODES = {"keyword": search_pb2.SEARCH_MODE_KEYWORD, "hybrid": search_pb2.SEARCH_MODE_HYBRID}
CAPTIONS = "/youtube" + youtube.CAPTIONS_PATH  # YOUTUBE_CAPTIONS_BASE_URL is {server}/youtube


def built_vtt(spoken: str) -> bytes:
    """A WebVTT file (W3C WebVTT: header, cue timing lines, cue text; no cue ids)."""
    return (
        "WEBVTT\n\n00:00:00.000 --> 00:00:03.000\nso today we talk about\n\n"
        f"00:00:03.000 --> 00:00:06.000\nthe <c>{spoken}</c> problem\n"
    ).encode()


async def test_schedule_run_loads_searchable_captions(sources_app, sources_server):
    app, server = sources_app, sources_server.server
    word = f"zymotechnic{unique_id('w').replace('-', '')[-6:]}"
    video_id = json.loads((YT / "videos.list.1.json").read_bytes())["items"][0]["id"]
    asked: list[tuple[str | None, str | None]] = []
    formats: set[tuple[str | None, str | None]] = set()

    def timedtext(req: Request) -> Response:
        # The generated track only: the manual request answers empty, as YouTube does for a
        # track that does not exist; the other videos have no captions at all.
        asked.append((req.q("v"), req.q("kind")))
        formats.add((req.q("lang"), req.q("fmt")))
        if req.q("v") == video_id and req.q("kind") == "asr":
            return Response(200, built_vtt(word), {"Content-Type": "text/vtt"})
        return Response(200, b"", {"Content-Type": "text/vtt"})

    server.route(CAPTIONS, timedtext)

    # The schedule's own input: its options are what a scheduled run passes.
    (schedule,) = [s for s in all_schedules() if s.schedule_id == "ingest/youtube"]
    assert schedule.arg.options.get("transcripts") == "true"
    result = await ingest(app, "youtube", **schedule.arg.options)
    assert result.outcome == "ok", result
    assert (video_id, None) in asked and (video_id, "asr") in asked
    assert formats == {("en", "vtt")}
    assert (
        await stored_transcript(app, "youtube", video_id)
        == f"so today we talk about the {word} problem"
    )
    for name, mode in MODES.items():
        assert video_id in await search_ids(app.grpc_address, word, mode), name

    # A run without the option fetches nothing and keeps the transcript.
    before = server.hits(CAPTIONS)
    plain = await ingest(app, "youtube")
    assert plain.outcome == "ok" and (plain.inserted, plain.updated) == (0, 0), plain
    assert server.hits(CAPTIONS) == before
    assert word in (await stored_transcript(app, "youtube", video_id) or "")

    # The schedule again: the video that has a transcript is not asked for it twice.
    again = await ingest(app, "youtube", **schedule.arg.options)
    assert again.outcome == "ok", again
    assert [k for v, k in asked if v == video_id] == [None, "asr"]
