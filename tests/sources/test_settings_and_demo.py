"""Every source setting is declared once, on its source; the demo serves every source offline."""

from __future__ import annotations

import pytest

from activities.ingest_cpu import decode_page as _decode
from devstack.demo import DEMO_SOURCES, install_demo
from devstack.harness.fixture_server import FixtureServer
from learnflow.http import SourceHttp
from learnflow.settings import OvsMediaHosts, Settings, SourceSettings, get_settings
from sources import all_sources, get_source
from sources._catalog import source_settings
from sources.base import ExtractContext
from sources.ovs import OvsSettings
from sources.sloan import SloanSettings


def _settings_classes():
    import importlib

    from pydantic import BaseModel

    for name in all_sources():
        module = importlib.import_module(f"sources.{name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__name__.endswith("Settings")
                and value.__module__ == module.__name__
            ):
                yield value


def test_every_source_setting_is_declared_once_on_its_source():
    classes = list(_settings_classes())
    assert len(classes) >= 13
    kernel = set(Settings.model_fields)
    owner: dict[str, str] = {}
    for cls in classes:
        assert issubclass(cls, SourceSettings), cls
        for name in cls.model_fields:
            if name in OvsMediaHosts.model_fields:
                continue  # the one shared with the webhook service, declared once in the kernel
            assert name not in kernel, f"{cls.__name__}.{name} is declared on Settings too"
            assert name not in owner, f"{name} is declared by {owner.get(name)} and {cls.__name__}"
            owner[name] = cls.__name__


def test_source_settings_follow_the_environment_and_options(monkeypatch):
    monkeypatch.setenv("SEE_API_URL", "https://see.example.org/api/")
    monkeypatch.setenv("OVS_ALLOWED_MEDIA_HOSTS", "A.example.org, b.example.org")
    stale = get_settings()
    monkeypatch.setenv("SEE_API_CLIENT_ID", "from-env")  # after `stale` was read
    cfg = source_settings(SloanSettings, stale, {"see_api_client_secret": "opt"})
    assert cfg.see_api_url == "https://see.example.org/api/"
    assert cfg.see_api_client_id == "from-env"  # the live settings, not the stale object
    assert cfg.see_api_client_secret.get_secret_value() == "opt"  # options win
    assert source_settings(OvsSettings).ovs_allowed_media_hosts == [
        "a.example.org",
        "b.example.org",
    ]
    # a source's own settings object passed back in is read as-is
    assert source_settings(SloanSettings, cfg).see_api_client_id == "from-env"


def test_get_settings_is_cached_until_the_environment_changes(monkeypatch):
    first = get_settings()
    assert get_settings() is first
    monkeypatch.setenv("HTTP_USER_AGENT", "learnflow-test/1")
    changed = get_settings()
    assert changed is not first and changed.http_user_agent == "learnflow-test/1"
    assert get_settings() is changed
    # a source's own settings follow the environment the same way
    from sources.medium_news import MediumSettings

    medium = source_settings(MediumSettings)
    assert source_settings(MediumSettings) is medium
    monkeypatch.setenv("MEDIUM_MIT_NEWS_URL", "https://feeds.example.org/rss")
    assert source_settings(MediumSettings).medium_mit_news_url == "https://feeds.example.org/rss"


@pytest.mark.parametrize("name", DEMO_SOURCES)
async def test_demo_serves_every_source_offline(monkeypatch, name):
    """Each demo source extracts from the local server only and transforms without quarantine."""
    with FixtureServer() as server:
        for key, value in install_demo(server).items():
            monkeypatch.setenv(key, value)
        settings = get_settings()
        source = get_source(name)
        assert source.unavailable is None or source.unavailable(settings) is None
        hosts = source.allowed_hosts(settings)
        # every configured URL is on the local server (nothing would reach the internet)
        assert "127.0.0.1" in hosts or not source.urls
        async with SourceHttp(hosts or None, allow_private=True, max_backoff=0.01) as http:
            ctx = ExtractContext(http=http, settings=settings, options={})
            pages = [p async for p in source.extract(ctx)]
        assert {r.path for r in server.requests}, "the demo server answered"
    assert pages
    produced = quarantined = 0
    for page in pages:
        context = [
            _decode(c.body) for c in pages if c.kind in source.context_kinds.get(page.kind, ())
        ]
        out = source.transform_payload(page.kind, _decode(page.body), context)
        produced += len(out.resources) + len(out.feed_items) + len(out.view_events)
        quarantined += len(out.quarantined)
    assert produced > 0 and quarantined == 0


def test_demo_covers_every_scheduled_catalog_and_feed_source():
    # marketing pages scrape URLs from the catalog (no feed to serve): the only one left out
    assert set(all_sources()) - set(DEMO_SOURCES) == {"marketing_pages"}


async def test_demo_serves_youtube_captions_offline(monkeypatch):
    """`learn up --demo` runs `ingest/youtube` with its schedule's options: the captions come
    from the demo server (an HTTP layer that allows only it would refuse youtube.com)."""
    from sources import youtube

    with FixtureServer() as server:
        for key, value in install_demo(server).items():
            monkeypatch.setenv(key, value)
        (schedule,) = youtube.SCHEDULES
        async with SourceHttp({"127.0.0.1"}, allow_private=True, max_backoff=0.01) as http:
            ctx = ExtractContext(http=http, settings=get_settings(), options=schedule.arg.options)
            pages = [p async for p in youtube.extract(ctx)]
        assert server.hits("/youtube/api/timedtext") > 0
    videos = [v for p in pages if p.kind == "videos" for v in _decode(p.body)["items"]]
    (transcripts,) = [_decode(p.body) for p in pages if p.kind == "transcripts"]
    assert videos and set(transcripts["transcripts"]) == {v["id"] for v in videos}
    assert all(t.startswith("Welcome to ") for t in transcripts["transcripts"].values())
