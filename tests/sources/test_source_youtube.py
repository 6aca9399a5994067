"""YouTube: the recorded Data API pages with the real open-video-data config, config rules,
description cleaning, quarantine, and the config → playlists → items → videos extract."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from devstack.harness.fixture_server import FixtureServer, Request, Response
from learnflow.http import SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import youtube
from sources.base import ExtractContext
from tests.helpers.corruption import corrupted
from tests.helpers.fixtures import FIXTURES_ROOT

SHARED = FIXTURES_ROOT
YT = SHARED / "mitlearn/test_json/youtube"
CHANNELS_YAML = (SHARED / "open-video-data/youtube/channels.yaml").read_bytes()
OCW_CHANNEL = "UCEBb1b_L6zDS3xTUrIALZOw"
MITX_CHANNEL = "UCTBMWu8yshnAmpzR3MoJFtw"
CSAIL_CHANNEL = "UCBpxspUNl1Th33XbugiHJzw"


def load(name: str) -> Any:
    return json.loads((YT / name).read_text())


VIDEOS_OCW = load("videos.list.1.json")
VIDEOS_MITX = load("videos.list.0.json")
PLAYLIST_OCW = load("playlists.list.1.json")
ITEMS = [load("playlistItems.list.1.json"), load("playlistItems.list_next.0.json")]
VIDEO = VIDEOS_MITX["items"][0]


def built_config(**channel_overrides: Any) -> list[dict]:
    """A config in open-video-data's documented format for the recorded channels."""
    return [
        {
            "channel_id": OCW_CHANNEL,
            "offered_by": "ocw",
            "playlists": [{"id": "PL221E2BBF13BECF6C", "create_videos": True}],
            **channel_overrides,
        },
        {"channel_id": MITX_CHANNEL, "offered_by": "mitx", "playlists": [{"id": "all"}]},
        {
            "channel_id": CSAIL_CHANNEL,
            "offered_by": "csail",
            "playlists": [
                {"id": "all"},
                {"id": "PLcwbNON2hqP5TFbkw0igt6Wz79WTaeFGi", "ignore": True},
            ],
        },
    ]


def test_video_fields_with_the_real_config():
    out = youtube.transform("videos", VIDEOS_OCW, [CHANNELS_YAML])
    assert not out.quarantined and len(out.resources) == 24
    video = out.resources[0]
    assert (video.readable_id, video.platform, video.resource_type, video.etl_source) == (
        "lGGDIGizcQ0",
        "youtube",
        "video",
        "youtube",
    )
    assert video.title == "24. Markov Matrices; Fourier Series"
    assert video.offered_by == "ocw"  # channels.yaml: the OCW channel
    assert video.url == "https://www.youtube.com/watch?v=lGGDIGizcQ0"
    assert video.image.url == "https://i.ytimg.com/vi/lGGDIGizcQ0/hqdefault.jpg"
    assert video.last_modified == datetime(2019, 9, 24, 20, 20, 31, tzinfo=UTC)
    assert video.details["duration"] == "PT51M12S" and video.details["youtube_id"] == "lGGDIGizcQ0"
    # course-title line, Instructor:, View the complete course:, YouTube Playlist:, License:,
    # and URL lines are boilerplate
    assert video.description == "24. Markov Matrices; Fourier Series"
    assert video.availability == "anytime" and video.published


def test_offered_by_only_for_known_codes_and_configured_channels():
    assert {
        r.offered_by for r in youtube.transform("videos", VIDEOS_MITX, [CHANNELS_YAML]).resources
    } == {None}
    config = yaml.safe_dump(built_config())
    assert {r.offered_by for r in youtube.transform("videos", VIDEOS_MITX, [config]).resources} == {
        "mitx"
    }
    odd = yaml.safe_dump([{"channel_id": MITX_CHANNEL, "offered_by": "nobody", "playlists": []}])
    assert {r.offered_by for r in youtube.transform("videos", VIDEOS_MITX, [odd]).resources} == {
        None
    }


def test_playlist_with_items_as_context():
    out = youtube.transform("playlists", PLAYLIST_OCW, [yaml.safe_dump(built_config()), *ITEMS])
    (playlist,) = out.resources
    assert (
        playlist.readable_id == "PL221E2BBF13BECF6C" and playlist.resource_type == "video_playlist"
    )
    assert (
        playlist.title == "MIT 18.06SC Linear Algebra, Fall 2011" and playlist.offered_by == "ocw"
    )
    assert playlist.url == "https://www.youtube.com/playlist?list=PL221E2BBF13BECF6C"
    assert playlist.image.url == "https://i.ytimg.com/vi/7UJ4CFRGd-U/hqdefault.jpg"
    assert playlist.image.alt == playlist.title
    assert len(playlist.relationships) == 74  # 50 + 24 over two pages, in playlist order
    first = ITEMS[0]["items"][0]["contentDetails"]["videoId"]
    last = ITEMS[1]["items"][-1]["contentDetails"]["videoId"]
    assert playlist.relationships[0].child.readable_id == first
    assert playlist.relationships[-1].child.readable_id == last
    assert playlist.relationships[-1].position == 73
    assert all(r.relation_type == "PLAYLIST_VIDEOS" for r in playlist.relationships)


def test_create_videos_false_keeps_ids_without_links():
    out = youtube.transform("playlists", PLAYLIST_OCW, [CHANNELS_YAML, *ITEMS])
    (playlist,) = out.resources  # channels.yaml: OCW has create_videos false, playlists "all"
    assert playlist.relationships == [] and playlist.details["create_videos"] is False
    assert len(playlist.details["video_ids"]) == 74


def test_items_naming_their_playlist_are_matched_by_id():
    items = copy.deepcopy(ITEMS[0])
    for item in items["items"]:
        item["snippet"] = {"playlistId": "SOMEOTHER"}
    items["items"][0]["snippet"] = {"playlistId": "PL221E2BBF13BECF6C"}
    (playlist,) = youtube.transform("playlists", PLAYLIST_OCW, [items]).resources
    assert len(playlist.relationships) == 1


def test_playlist_rules_wildcard_and_ignore():
    config = [yaml.safe_dump(built_config())]
    mitx = youtube.transform("playlists", load("playlists.list.0.json"), config).resources
    assert [r.readable_id for r in mitx] == ["PLTz-v-F773kXwTSKsX_E9t8ZnP_3LYaGy"]  # wildcard
    csail_page = load("playlists.list.2.json")
    csail = youtube.transform("playlists", csail_page, config).resources
    ids = [r.readable_id for r in csail]  # wildcard, but the "Unwanted Playlist" is ignored
    assert "PLcwbNON2hqP5TFbkw0igt6Wz79WTaeFGi" not in ids
    assert len(ids) == len(csail_page["items"]) - 1
    # a channel the config does not list loses its playlists
    assert youtube.transform("playlists", csail_page, [CHANNELS_YAML]).resources == []


def test_clean_description():
    text = (
        "Intro line\nMIT 6.006 Introduction to Algorithms, Fall 2011\nInstructor: Erik Demaine\n"
        "0:00 Intro\n12:34 Lecture\nSee https://ocw.mit.edu\n\n\n\nLast line\n"
        + youtube.OCW_COMMENT_POLICY
    )
    assert youtube.clean_description(text) == "Intro line\n\nLast line"
    assert youtube.clean_description(None) == ""


def test_bad_video_is_quarantined_the_rest_load():
    page = copy.deepcopy(VIDEOS_MITX)
    del page["items"][1]["snippet"]
    page["items"][2]["id"] = None
    out = youtube.transform("videos", page, [CHANNELS_YAML])
    assert len(out.resources) == 3 and len(out.quarantined) == 2
    assert out.quarantined[0].item_key == VIDEOS_MITX["items"][1]["id"]
    assert all(q.reason and q.source == "youtube" for q in out.quarantined)


def test_wrong_shape_raises_value_error():
    cases = [
        ("videos", {"error": {"code": 403}}),
        ("videos", PLAYLIST_OCW),  # a playlists page is not a videos page
        ("playlists", []),
        ("config", b"[]"),  # empty config: MIT Learn aborts
        ("config", b"- channel_id: x\n"),  # no playlists
        ("channels", VIDEOS_OCW),
    ]
    for kind, payload in cases:
        with pytest.raises(ValueError):
            youtube.transform(kind, payload)
    assert youtube.transform("config", CHANNELS_YAML) == TransformOutput()
    assert youtube.transform("playlist_items", ITEMS[0]) == TransformOutput()


CONFIG = yaml.safe_dump(built_config())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    video=corrupted(VIDEO), playlist=corrupted(PLAYLIST_OCW["items"][0]), items=corrupted(ITEMS[0])
)
def test_corrupted_items_only_quarantine(video, playlist, items):
    out = youtube.transform(
        "videos", {**VIDEOS_MITX, "items": [video, VIDEOS_MITX["items"][1]]}, [CONFIG]
    )
    assert isinstance(out, TransformOutput)
    assert VIDEOS_MITX["items"][1]["id"] in {r.readable_id for r in out.resources}
    out = youtube.transform("playlists", {**PLAYLIST_OCW, "items": [playlist]}, [CONFIG, items])
    assert isinstance(out, TransformOutput)
    assert len(out.resources) + len(out.quarantined) <= 1


@settings(max_examples=60, deadline=None)
@given(page=corrupted(VIDEOS_MITX), config=corrupted(built_config()))
def test_corrupted_pages_and_configs_raise_only_value_error(page, config):
    for kind, payload, context in (
        ("videos", page, [CONFIG]),
        ("videos", VIDEOS_MITX, [yaml.safe_dump(config)]),
    ):
        try:
            out = youtube.transform(kind, payload, context)
        except ValueError:
            continue
        assert isinstance(out, TransformOutput)
    with contextlib.suppress(ValueError):
        youtube.transform("config", yaml.safe_dump(config))


async def test_extract_walks_config_playlists_items_videos_with_the_key():
    requests: list[Request] = []
    with FixtureServer() as server:
        base = server.base_url

        def api(name: str):
            def handler(req: Request) -> Response:
                requests.append(req)
                if name == "playlistItems":
                    page = ITEMS[1] if req.q("pageToken") == "CDIQAA" else ITEMS[0]
                    return Response.json(page)
                return Response.json({"playlists": PLAYLIST_OCW, "videos": VIDEOS_OCW}[name])

            return handler

        for name in ("playlists", "playlistItems", "videos"):
            server.route(f"/youtube/v3/{name}", api(name))
        server.route("/config.yaml", Response(200, yaml.safe_dump(built_config()[:1]).encode()))
        server.inject("/youtube/v3/playlistItems", Response(500))
        async with SourceHttp(
            allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01
        ) as http:
            ctx = ExtractContext(
                http=http,
                settings=get_settings(),
                options={
                    "youtube_developer_key": "test-key",
                    "youtube_config_url": f"{base}/config.yaml",
                    "youtube_api_base_url": f"{base}/youtube/v3",
                },
            )
            pages = [p async for p in youtube.extract(ctx)]
        assert server.hits("/youtube/v3/playlistItems") == 3  # the 500, then two pages
    kinds = [p.kind for p in pages]
    assert kinds == [
        "config", "playlist_items", "playlist_items", "videos", "videos", "playlists",
        "transcripts",  # no pool, no `transcripts` option: none carried, none fetched
    ]  # fmt: skip
    assert json.loads(pages[-1].body) == {"transcripts": {}}
    assert all(r.query["key"] == ["test-key"] for r in requests)
    playlists_req = next(r for r in requests if r.path.endswith("/playlists"))
    assert playlists_req.query["id"] == ["PL221E2BBF13BECF6C"]
    video_reqs = [r for r in requests if r.path.endswith("/videos")]
    assert [len(r.query["id"][0].split(",")) for r in video_reqs] == [50, 24]
    item_reqs = [r for r in requests if r.path.endswith("/playlistItems")]
    assert item_reqs[0].query["part"] == ["snippet,contentDetails"]
    assert item_reqs[1].query["pageToken"] == ["CDIQAA"]
    context = [pages[0].body, *(json.loads(p.body) for p in pages[1:3])]
    (playlist,) = youtube.transform("playlists", json.loads(pages[-2].body), context).resources
    assert len(playlist.relationships) == 74


def test_unavailable_without_a_key(monkeypatch):
    monkeypatch.delenv("YOUTUBE_DEVELOPER_KEY", raising=False)
    assert "YOUTUBE_DEVELOPER_KEY" in youtube.unavailable(get_settings())
    monkeypatch.setenv("YOUTUBE_DEVELOPER_KEY", "k")
    assert youtube.unavailable(get_settings()) is None
    assert youtube.SOURCE.unavailable is youtube.unavailable


def built_vtt(*cues: str) -> bytes:
    """WebVTT built from the W3C format: header, a NOTE block, cues (timing line + text)."""
    body = "WEBVTT\n\nNOTE built for this test\n\n"
    for i, cue in enumerate(cues):
        body += f"00:00:{2 * i:02d}.000 --> 00:00:{2 * i + 2:02d}.000\n{cue}\n\n"
    return body.encode()


def test_videos_take_their_transcript_from_the_context_page():
    first = VIDEOS_OCW["items"][0]["id"]
    out = youtube.transform("videos", VIDEOS_OCW, [CHANNELS_YAML, {"transcripts": {first: "t"}}])
    by_id = {r.readable_id: r for r in out.resources}
    assert by_id[first].details["transcript"] == "t"
    others = [r for k, r in by_id.items() if k != first]
    assert others and all("transcript" not in r.details for r in others)
    assert youtube.transform("transcripts", {"transcripts": {first: "t"}}) == TransformOutput()


async def test_captions_manual_then_generated_and_a_failure_is_skipped():
    ids = ["manualAAAAA", "generatedBB", "noneCCCCCCC", "brokenDDDDD"]
    seen: list[tuple[str, str | None]] = []

    def timedtext(req: Request) -> Response:
        vid, kind = req.q("v") or "", req.q("kind")
        seen.append((vid, kind))
        if vid == "brokenDDDDD":
            return Response(403, b"forbidden")
        if (vid, kind) in (("manualAAAAA", None), ("generatedBB", "asr")):
            return Response(200, built_vtt(f"spoken in {vid}", f"spoken in {vid}", "the end"))
        return Response(200, b"")  # no such track

    with FixtureServer() as server:
        server.route("/api/timedtext", timedtext)
        cfg = youtube.settings_for(None, {"youtube_captions_base_url": server.base_url})
        async with SourceHttp(
            allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01
        ) as http:
            texts = await youtube.fetch_transcripts(http, ids, cfg, skip={"skippedEEEE"})
            assert await youtube.fetch_transcripts(http, ["x"], cfg, skip={"x"}) == {}
    assert texts == {
        "manualAAAAA": "spoken in manualAAAAA the end",
        "generatedBB": "spoken in generatedBB the end",
    }
    assert seen == [
        ("manualAAAAA", None),
        ("generatedBB", None),
        ("generatedBB", "asr"),
        ("noneCCCCCCC", None),
        ("noneCCCCCCC", "asr"),
        ("brokenDDDDD", None),
    ]


def test_schedule_fetches_captions_and_hosts_include_the_caption_endpoint():
    (schedule,) = youtube.SCHEDULES
    assert schedule.schedule_id == "ingest/youtube" and schedule.arg.options == {
        "transcripts": "true"
    }
    assert "www.youtube.com" in youtube.SOURCE.allowed_hosts(get_settings())
