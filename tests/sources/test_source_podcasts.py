"""Podcasts: the recorded RSS feed with the real open-podcast-data configs, envelopes,
quarantine, corrupted items, and the config-listing → feeds extract (a failing feed leaves the
fetch incomplete instead of unpublishing its episodes)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.harness.fixture_server import FixtureServer, Response
from learnflow.http import PermanentHttpError, SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import podcasts
from sources.base import ExtractContext
from tests.helpers.fixtures import FIXTURES_ROOT

SHARED = FIXTURES_ROOT
RSS = (SHARED / "mitlearn/test_html/test_podcast.rss").read_bytes()
CONFIG_DIR = SHARED / "open-podcast-data/podcasts"
CHALK = (CONFIG_DIR / "chalk-radio.yaml").read_bytes()
TEXT = RSS.decode()
ITEMS = re.findall(r"<item>.*?</item>", TEXT, flags=re.S)
HEAD, TAIL = TEXT[: TEXT.index("<item>")], TEXT[TEXT.rindex("</item>") + len("</item>") :]


def feed_with(*items: str) -> bytes:
    return (HEAD + "\n".join(items) + TAIL).encode()


def test_podcast_and_episodes_from_the_recorded_feed_and_a_real_config():
    out = podcasts.transform("episodes", RSS, [CHALK])
    assert not out.quarantined
    podcast, ep1, ep2 = out.resources
    assert (podcast.readable_id, podcast.platform, podcast.resource_type, podcast.etl_source) == (
        "feeds.simplecast.com/8fQdS6Dx",
        "podcast",
        "podcast",
        "podcast",
    )
    assert podcast.title == "A Podcast"  # no podcast_title in the config: the channel's
    assert podcast.offered_by == "ocw"  # "OCW" resolved to the offeror code
    assert podcast.url == "https://chalk-radio.simplecast.com/"
    assert podcast.image.url == "apicture.jpg"
    assert podcast.description == "Lorem ipsum dolor sit amet, consectetur adipiscing elit."
    assert [t.name for t in podcast.topics][:1] == ["Pedagogy and Curriculum"]
    assert "Digital Learning" in [t.name for t in podcast.topics]
    assert podcast.details["rss_url"] == "https://feeds.simplecast.com/8fQdS6Dx"
    assert podcast.details["apple_podcasts_url"].endswith("id1497545103")
    assert [(r.relation_type, r.child.readable_id, r.position) for r in podcast.relationships] == [
        ("PODCAST_EPISODES", "tag:soundcloud,2010:tracks/numbers1", 0),
        ("PODCAST_EPISODES", "tag:soundcloud,2010:tracks/numbers2", 1),
    ]
    assert ep1.resource_type == "podcast_episode" and ep1.title == "Episode1"
    assert ep1.url == "https://soundcloud.com/podcast/episode1"
    assert ep1.image.url == "apicture.jpg"  # no item image: the podcast's
    assert ep2.image.url == "image1.jpg"
    assert ep1.last_modified == datetime(2020, 4, 1, 18, 20, 31, tzinfo=UTC)
    assert ep1.details["audio_url"] == "http://feeds.soundcloud.com/stream/episode1.mp3"
    assert ep1.details["episode_link"] == "https://soundcloud.com/podcast/episode1"
    assert ep1.details["duration"] == "PT17M16S"
    assert ep1.details["rss"].startswith("<item") and "numbers1" in ep1.details["rss"]
    assert ep1.offered_by == "ocw" and ep1.topics == podcast.topics


def test_envelope_and_title_override():
    config = {**yaml.safe_load(CHALK), "podcast_title": "Chalk Radio"}
    out = podcasts.transform("episodes", {"config": config, "rss": TEXT})
    assert out.resources[0].title == "Chalk Radio" and len(out.resources) == 3


def test_without_config_the_feeds_self_link_is_the_rss_url():
    (podcast, *_) = podcasts.transform("episodes", RSS).resources
    assert podcast.readable_id == "feeds.soundcloud.com/users/soundcloud:users:something/sounds.rss"
    assert podcast.offered_by is None and podcast.topics == []


def test_every_real_config_is_valid():
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        (config,) = podcasts.read_config(path.read_bytes())
        assert config["rss_url"].startswith("http"), path.name


def test_episode_ids_fall_back_to_link_then_audio():
    no_guid = re.sub(r"<guid[^>]*>.*?</guid>", "", ITEMS[0], flags=re.S)
    neither = re.sub(r"<link>.*?</link>", "", no_guid, flags=re.S)
    out = podcasts.transform("episodes", feed_with(no_guid, neither), [CHALK])
    assert [r.readable_id for r in out.resources[1:]] == [
        "soundcloud.com/podcast/episode1",
        "feeds.soundcloud.com/stream/episode1.mp3",
    ]
    assert out.resources[2].url == "http://feeds.soundcloud.com/stream/episode1.mp3"


def test_bad_episode_is_quarantined_the_rest_load():
    no_audio = re.sub(r"<enclosure[^>]*/>", "", ITEMS[0])
    out = podcasts.transform("episodes", feed_with(no_audio, ITEMS[1]), [CHALK])
    assert [r.readable_id for r in out.resources] == [
        "feeds.simplecast.com/8fQdS6Dx",
        "tag:soundcloud,2010:tracks/numbers2",
    ]
    (bad,) = out.quarantined
    assert bad.item_key == "tag:soundcloud,2010:tracks/numbers1" and "enclosure" in bad.reason
    assert "numbers1" in bad.raw  # the item's XML is kept
    assert len(out.resources[0].relationships) == 1


def test_wrong_shape_raises_value_error():
    cases = [
        (b"<html><body/></html>", [CHALK]),
        (b"not xml at all", [CHALK]),
        (re.sub(rb"<atom:link[^>]*/>", b"", RSS), []),  # no config and no self link
        ({"config": {"topics": "x"}, "rss": TEXT}, []),  # config without rss_url
        (b'<!DOCTYPE r [<!ENTITY a "aaaa">]><rss><channel/></rss>', [CHALK]),  # DTDs refused
    ]
    for payload, context in cases:
        with pytest.raises(ValueError):
            podcasts.transform("episodes", payload, context)
    with pytest.raises(ValueError):
        podcasts.transform("podcasts", RSS, [CHALK])


@pytest.mark.parametrize(
    ("text", "iso"),
    [("00:17:16", "PT17M16S"), ("1:02:03", "PT1H2M3S"), ("75", "PT1M15S"), ("", None), ("x", None)],
)
def test_durations(text, iso):
    assert podcasts.iso_duration(text) == iso


CHILDREN = sorted(set(re.findall(r"<([\w:]+)[ >/]", ITEMS[1])) - {"item"})


@st.composite
def corrupted_item(draw) -> str:
    item = ITEMS[1]
    for tag in draw(st.lists(st.sampled_from(CHILDREN), min_size=1, max_size=4)):
        pattern = re.compile(rf"<{tag}(\s[^>]*)?(/>|>.*?</{tag}>)", flags=re.S)
        if draw(st.booleans()):
            item = pattern.sub("", item, count=1)
        else:
            junk = draw(st.sampled_from(["", "x", "-1", "99:99:99:99", "&amp;", "<b>bold</b>"]))
            item = pattern.sub(lambda m, j=junk, t=tag: f"<{t}>{j}</{t}>", item, count=1)
    return item


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(item=corrupted_item())
def test_corrupted_items_only_quarantine(item):
    out = podcasts.transform("episodes", feed_with(ITEMS[0], item), [CHALK])
    assert isinstance(out, TransformOutput)
    ids = {r.readable_id for r in out.resources}
    assert {"feeds.simplecast.com/8fQdS6Dx", "tag:soundcloud,2010:tracks/numbers1"} <= ids


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(RSS)))
def test_truncated_feeds_raise_only_value_error(cut):
    try:
        out = podcasts.transform("episodes", RSS[:cut], [CHALK])
    except ValueError:
        return
    assert isinstance(out, TransformOutput)


def _http() -> SourceHttp:
    return SourceHttp(allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01)


async def test_extract_lists_configs_reads_feeds_and_marks_a_failed_feed():
    names = ["chalk-radio.yaml", "curious_coincidence.yaml", "glimpse.yaml"]
    with FixtureServer() as server:
        base = server.base_url
        listing = []
        for n, name in enumerate(names):
            config = yaml.safe_load((CONFIG_DIR / name).read_bytes())
            config["rss_url"] = f"{base}/rss/{n}"  # the real config, its feed served locally
            server.route(f"/raw/{name}", Response(200, yaml.safe_dump(config).encode()))
            listing.append({"name": name, "type": "file", "download_url": f"{base}/raw/{name}"})
        listing.append({"name": "README.md", "type": "file", "download_url": f"{base}/raw/README"})
        server.route("/contents/podcasts", Response.json(listing))
        server.route("/rss/0", Response(200, RSS))
        server.route("/rss/1", Response(200, RSS))
        server.inject("/rss/1", Response(503))  # transient: retried
        server.route("/rss/2", Response(500))  # keeps failing
        async with _http() as http:
            ctx = ExtractContext(
                http=http,
                settings=get_settings(),
                options={"podcast_config_url": f"{base}/contents/podcasts"},
            )
            pages = []
            with pytest.raises(PermanentHttpError, match="1 podcast feed"):
                async for page in podcasts.extract(ctx):
                    pages.append(page)
        assert server.hits("/rss/1") == 2 and server.hits("/raw/README") == 0
        assert server.requests[0].query["ref"] == ["master"]
    assert [(p.kind, p.item_count) for p in pages] == [("episodes", 2), ("episodes", 2)]
    out = podcasts.transform("episodes", json.loads(pages[1].body))
    assert out.resources[0].readable_id.endswith("/rss/1")
    podcast = out.resources[0]
    assert podcast.url == "https://www.technologyreview.com/supertopic/curious-coincidence/"
    assert podcast.offered_by is None  # "MIT Technology Review" is not an MIT Learn offeror
    assert [t.name for t in podcast.topics][:1] == ["Science & Math"]


async def test_extract_from_a_local_config_folder_and_empty_config_aborts(tmp_path):
    with FixtureServer() as server:
        (tmp_path / "one.yaml").write_text(yaml.safe_dump({"rss_url": f"{server.base_url}/rss"}))
        (tmp_path / "broken.yaml").write_text("topics: [unclosed")
        server.route("/rss", Response(200, RSS))
        async with _http() as http:
            ctx = ExtractContext(
                http=http, settings=get_settings(), options={"podcast_config_path": str(tmp_path)}
            )
            (page,) = [p async for p in podcasts.extract(ctx)]
            assert page.item_count == 2
            empty = ExtractContext(
                http=http,
                settings=get_settings(),
                options={"podcast_config_path": str(tmp_path / "broken.yaml")},
            )
            with pytest.raises(ValueError, match="no valid podcast config"):
                _ = [p async for p in podcasts.extract(empty)]


def test_source_registration():
    assert podcasts.SOURCE.resource_types == ("podcast", "podcast_episode")
    assert podcasts.SOURCE.kinds == ("episodes",)
