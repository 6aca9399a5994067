"""ODL Video Service: the recorded videos page, media allow-list, quarantine, `next` pages."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings

from devstack.harness.fixture_server import FixtureServer, Request, Response
from learnflow.http import PermanentHttpError, SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import ovs
from sources.base import ExtractContext
from tests.helpers.corruption import corrupted
from tests.helpers.fixtures import MITLEARN

FIXTURES = MITLEARN
PAGE = json.loads((FIXTURES / "test_json" / "ovs_videos.json").read_text())
FIRST, SECOND = PAGE["results"]


def page_of(*videos: Any, next_url: str | None = None) -> dict:
    return {**PAGE, "count": len(videos), "next": next_url, "results": list(videos)}


def test_videos_fields_from_the_recorded_page():
    out = ovs.transform("videos", PAGE)
    assert not out.quarantined
    intro, advanced = out.resources
    assert (intro.readable_id, intro.platform, intro.resource_type, intro.etl_source) == (
        "96fb932aa5644d8e8f6a5fafe42caa87",
        "ovs",
        "video",
        "ovs",
    )
    assert intro.title == "Introduction to Machine Learning"
    assert intro.description == "An introductory lecture on machine learning concepts."
    assert intro.url == "https://video.odl.mit.edu/videos/96fb932aa5644d8e8f6a5fafe42caa87"
    thumb = (
        "https://d1rlgptj9v7p9j.cloudfront.net/thumbnails/96fb932aa5644d8e8f6a5fafe42caa87/"
        "video_thumbnail_00001.jpg"
    )
    assert intro.image.url == thumb and intro.details["cover_image_url"] == thumb
    assert intro.last_modified == datetime(2020, 3, 23, 15, 14, 38, 254631, tzinfo=UTC)
    assert intro.availability == "anytime" and intro.published
    assert intro.resource_category == "Video" and intro.runs == []
    assert intro.details["duration"] == "PT1H1M1S"
    assert intro.details["streaming_url"].endswith(
        "/transcoded/96fb932aa5644d8e8f6a5fafe42caa87/video__index.m3u8"
    )
    assert intro.details["caption_urls"] == [
        {
            "language": "en",
            "language_name": "English",
            "url": "https://d1rlgptj9v7p9j.cloudfront.net/subtitles/"
            "96fb932aa5644d8e8f6a5fafe42caa87/subtitles_en.vtt",
        }
    ]
    # no thumbnail, no captions, zero duration, empty description
    assert advanced.image is None and advanced.details["caption_urls"] == []
    assert advanced.details["duration"] == "PT0S" and advanced.description is None


def test_playlists_group_videos_by_collection():
    out = ovs.transform("playlists", PAGE)
    assert not out.quarantined
    by_id = {r.readable_id: r for r in out.resources}
    test = by_id["ab12cd34ef5678901234567890abcdef"]
    assert test.resource_type == "video_playlist" and test.title == "Test Collection"
    assert test.url == "https://video.odl.mit.edu/collections/ab12cd34ef5678901234567890abcdef"
    assert [(r.relation_type, r.child.readable_id, r.position) for r in test.relationships] == [
        ("PLAYLIST_VIDEOS", "96fb932aa5644d8e8f6a5fafe42caa87", 0)
    ]
    assert by_id["fedcba0987654321fedcba0987654321"].description == "A test collection"


def test_playlists_from_the_collections_page_with_video_pages_as_context():
    second_page = page_of({**FIRST, "key": "video2"})
    collections = [FIRST["collection"], SECOND["collection"]]
    out = ovs.transform("playlists", collections, [PAGE, second_page])
    test = next(r for r in out.resources if r.readable_id == FIRST["collection"]["key"])
    assert [r.child.readable_id for r in test.relationships] == [FIRST["key"], "video2"]


def test_filter_and_shorts():
    private = {**FIRST, "key": "private", "is_public": False}
    pending = {**FIRST, "key": "pending", "status": "Transcoding"}
    orphan = {**FIRST, "key": "orphan", "collection": None}
    short = {**FIRST, "key": "short", "collection": {**FIRST["collection"], "for_shorts": True}}
    out = ovs.transform("videos", page_of(private, pending, orphan, short))
    assert [r.readable_id for r in out.resources] == ["short"]
    assert out.resources[0].resource_category == "Video Short"


@pytest.mark.parametrize(
    "url",
    [
        "http://d1rlgptj9v7p9j.cloudfront.net/x.jpg",  # not https
        "https://evil.example.com/x.jpg",  # not allow-listed
        "https://user:pw@d1rlgptj9v7p9j.cloudfront.net/x.jpg",  # userinfo
        "https://d1rlgptj9v7p9j.cloudfront.net\\@evil.example.com/x.jpg",  # backslash
    ],
)
def test_media_urls_off_the_allow_list_are_dropped(url):
    video = copy.deepcopy(FIRST)
    video["videothumbnail_set"][0]["cloudfront_url"] = url
    video["sources"][0]["src"] = url.replace(".jpg", ".m3u8")
    video["cta_link"] = url
    (res,) = ovs.transform("videos", page_of(video)).resources
    assert res.image is None and res.details["streaming_url"] is None
    assert res.url == f"https://video.odl.mit.edu/videos/{FIRST['key']}"
    assert res.details["caption_urls"] == []  # no allowed media host to build them on


def test_allowed_cta_link_and_api_host_media():
    video = {**FIRST, "cta_link": "https://video.odl.mit.edu/watch/1"}
    (res,) = ovs.transform("videos", page_of(video)).resources
    assert res.url == "https://video.odl.mit.edu/watch/1"


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("OVS_API_BASE_URL", "https://ovs.example.org/")
    monkeypatch.setenv("OVS_ALLOWED_MEDIA_HOSTS", "media.example.org")
    (res,) = ovs.transform("videos", page_of(FIRST)).resources
    assert res.url == f"https://ovs.example.org/videos/{FIRST['key']}"
    assert res.image is None  # the CloudFront host is no longer allowed


def test_bad_video_is_quarantined_the_rest_load():
    broken = {**FIRST, "key": "broken", "title": None}
    negative = {**FIRST, "key": "negative", "duration": -5}
    out = ovs.transform("videos", page_of(FIRST, broken, negative, SECOND))
    assert [r.readable_id for r in out.resources] == [FIRST["key"], SECOND["key"]]
    assert {q.item_key for q in out.quarantined} == {"broken", "negative"}
    assert all(q.source == "ovs" and q.reason for q in out.quarantined)


def test_wrong_shape_raises_value_error():
    for kind, payload in (("videos", {"detail": "x"}), ("playlists", "x"), ("channels", PAGE)):
        with pytest.raises(ValueError):
            ovs.transform(kind, payload)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(video=corrupted(FIRST))
def test_corrupted_videos_only_quarantine(video):
    for kind in ("videos", "playlists"):
        out = ovs.transform(kind, page_of(video, SECOND))
        assert isinstance(out, TransformOutput)
        assert SECOND["key"] in {r.readable_id for r in out.resources} | {
            c.child.readable_id for r in out.resources for c in r.relationships
        }


@settings(max_examples=60, deadline=None)
@given(page=corrupted(PAGE))
def test_corrupted_pages_raise_only_value_error(page):
    for kind in ("videos", "playlists"):
        try:
            out = ovs.transform(kind, page)
        except ValueError:
            continue
        assert isinstance(out, TransformOutput)


def _http() -> SourceHttp:
    return SourceHttp(allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01)


async def test_extract_follows_next_with_include_in_learn_and_retries_500():
    seen: list[dict] = []
    with FixtureServer() as server:

        def videos(req: Request) -> Response:
            seen.append({k: v[0] for k, v in req.query.items()})
            if req.q("page") == "2":
                return Response.json(page_of(SECOND))
            # the `next` link drops include_in_learn: the extractor puts it back
            return Response.json(page_of(FIRST, next_url=f"{server.base_url}{ovs.API_PATH}?page=2"))

        server.route(ovs.API_PATH, videos)
        server.inject(ovs.API_PATH, Response(500))
        async with _http() as http:
            ctx = ExtractContext(
                http=http, settings=get_settings(), options={"ovs_api_base_url": server.base_url}
            )
            pages = [p async for p in ovs.extract(ctx)]
        assert server.hits(ovs.API_PATH) == 3  # the 500, then two pages
    assert [(p.kind, p.item_count) for p in pages] == [
        ("videos", 1),
        ("videos", 1),
        ("playlists", 2),
        ("transcripts", 0),  # no pool, no `transcripts` option: none carried, none fetched
    ]
    assert json.loads(pages[3].body) == {"transcripts": {}}
    assert all(q.get("include_in_learn") == "true" for q in seen)
    assert seen[1]["page"] == "2"
    context = [json.loads(p.body) for p in pages[:2]]
    out = ovs.transform("playlists", json.loads(pages[2].body), context)
    assert sorted(r.readable_id for r in out.resources) == sorted(
        [FIRST["collection"]["key"], SECOND["collection"]["key"]]
    )


async def test_extract_refuses_a_foreign_next_and_an_empty_catalog():
    with FixtureServer() as server:
        server.route(
            ovs.API_PATH, Response.json(page_of(FIRST, next_url="https://evil.example.com/p2"))
        )
        async with _http() as http:
            ctx = ExtractContext(
                http=http, settings=get_settings(), options={"ovs_api_base_url": server.base_url}
            )
            with pytest.raises(PermanentHttpError, match="leaves"):
                _ = [p async for p in ovs.extract(ctx)]
            server.route(ovs.API_PATH, Response.json(page_of({**FIRST, "is_public": False})))
            with pytest.raises(ValueError, match="no playlist"):
                _ = [p async for p in ovs.extract(ctx)]


def test_source_registration():
    assert ovs.SOURCE.kinds == ("videos", "playlists", "transcripts")
    assert ovs.SOURCE.resource_types == ("video", "video_playlist")
    assert "video.odl.mit.edu" in ovs.SOURCE.allowed_hosts(get_settings())


WEBVTT_BUILT = (
    "WEBVTT\n\nNOTE built from the WebVTT format for this test\n\n"
    "1\n00:00:00.000 --> 00:00:02.500\n<v Speaker>Welcome to the <b>eigenvalue</b> lecture.\n\n"
    "2\n00:00:02.500 --> 00:00:05.000\nWelcome to the eigenvalue lecture.\nToday: spectra &amp; "
    "modes.\n"
)


def test_vtt_text_keeps_the_spoken_text_once():
    from sources._transcripts import vtt_text

    assert vtt_text(WEBVTT_BUILT) == ("Welcome to the eigenvalue lecture. Today: spectra & modes.")
    # an HTML error page where the captions should be is no transcript (WebVTT needs its header)
    assert vtt_text("<html><body><p>Not found</p></body></html>") == ""


def test_videos_take_their_transcript_from_the_context_page():
    out = ovs.transform("videos", PAGE, [{"transcripts": {FIRST["key"]: "spoken words"}}])
    by_key = {r.readable_id: r for r in out.resources}
    assert by_key[FIRST["key"]].details["transcript"] == "spoken words"
    others = [r for k, r in by_key.items() if k != FIRST["key"]]
    assert others and all("transcript" not in r.details for r in others)


async def test_extract_fetches_english_captions_with_the_transcripts_option():
    key = FIRST["key"]
    with FixtureServer() as server:
        server.route(ovs.API_PATH, Response.json(page_of(FIRST)))
        caption = ovs.english_caption_url(FIRST, ovs.settings_for())
        assert caption is not None and caption.startswith("https://")
        path = urlsplit(caption).path
        server.route(path, Response(200, WEBVTT_BUILT.encode(), {"Content-Type": "text/vtt"}))
        options = {
            "ovs_api_base_url": server.base_url,
            "ovs_captions_base_url": server.base_url,
            "transcripts": "true",
        }
        async with _http() as http:
            ctx = ExtractContext(http=http, settings=get_settings(), options=options)
            pages = [p async for p in ovs.extract(ctx)]
        assert server.hits(path) == 1
    texts = json.loads(pages[-1].body)["transcripts"]
    assert texts == {key: "Welcome to the eigenvalue lecture. Today: spectra & modes."}
