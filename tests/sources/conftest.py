"""Every catalog and feed source served from its recorded payloads (../shared/fixtures, read at run
time) at the paths the real APIs use, and the settings that point learnflow at them.

One `FixtureServer` (`sources_server`) answers every source except MITx Online, which the root
`fixture_server` serves (the root `app` fixture points MITX_ONLINE_BASE_URL there). PostHog's
Parquet export goes into a bucket of the session's moto S3. Sources with no recording (MIT
Climate, MicroMasters, Sloan news posts, the Sloan community page) are served from the payloads
the transform tests (test_source_*.py) build from the documented formats (`built_*` there). The
settings are set in the environment for the session: sources read them when their activity runs
(`source_settings`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from devstack.harness.fixture_server import FixtureServer, Request, Response
from devstack.harness.s3 import MotoS3
from learnflow.contracts import IngestResult, IngestSourceInput
from tests.conftest import FIXTURES, TEST_JSON, unique_id

SHARED_FIXTURES = FIXTURES.parent
YT = TEST_JSON / "youtube"
PODCAST_CONFIGS = SHARED_FIXTURES / "open-podcast-data" / "podcasts"
POSTHOG_BUCKET = "posthog-e2e"
TOKEN_PATH = "/oauth2/v1/access_token"
SEE_TOKEN_PATH = "/see/oauth/token"
RECORDED_TOKEN = "recorded-jwt"


def load(path: Path) -> Any:
    return json.loads(path.read_bytes())


def _json(data: Any, status: int = 200) -> Response:
    return Response.json(data, status)


@dataclass
class SourcesServer:
    """The fixture server plus what the tests need to script it."""

    server: FixtureServer
    env: dict[str, str]

    @property
    def base_url(self) -> str:
        return self.server.base_url


def token_handler(req: Request) -> Response:
    if b"grant_type=client_credentials" not in req.body or b"token_type=jwt" not in req.body:
        return _json({"error": "unsupported_grant_type"}, 400)
    return _json({"access_token": RECORDED_TOKEN, "expires_in": 3600})


def jwt_only(handler):
    def guarded(req: Request) -> Response:
        if req.headers.get("authorization") != f"JWT {RECORDED_TOKEN}":
            return _json({"detail": "Authentication credentials were not provided."}, 401)
        return handler(req)

    return guarded


def edx_routes(server: FixtureServer) -> dict[str, str]:
    courses = load(TEST_JSON / "test_mitx_course.json")
    second = load(TEST_JSON / "test_non_mitx_course.json")
    base = server.base_url
    path = "/api/v1/catalogs/10/courses/"

    def catalog(req: Request) -> Response:
        if req.q("page") == "2":
            return _json({**second, "next": None})
        return _json({**courses, "next": f"{base}{path}?page=2"})  # the recorded `next`, rebased

    server.route(TOKEN_PATH, token_handler, method="POST")
    server.route(path, jwt_only(catalog))
    server.route(
        "/api/v1/programs/",
        jwt_only(lambda _r: Response.file(TEST_JSON / "test_mitx_programs.json")),
    )
    return {
        "EDX_API_CLIENT_ID": "e2e-client",
        "EDX_API_CLIENT_SECRET": "e2e-secret",
        "EDX_API_ACCESS_TOKEN_URL": f"{base}{TOKEN_PATH}",
        "EDX_API_URL": f"{base}{path}",
        "EDX_PROGRAMS_API_URL": f"{base}/api/v1/programs/",
    }


def xpro_routes(server: FixtureServer) -> dict[str, str]:
    server.route("/api/courses/", Response.file(TEST_JSON / "xpro_courses.json"))
    server.route("/api/programs/", Response.file(TEST_JSON / "xpro_programs.json"))
    return {
        "XPRO_COURSES_API_URL": f"{server.base_url}/api/courses/",
        "XPRO_CATALOG_API_URL": f"{server.base_url}/api/programs/",
    }


def mitpe_routes(server: FixtureServer) -> dict[str, str]:
    pages = [load(TEST_JSON / "mitpe" / f"professional_ed_resources_{n}.json") for n in range(3)]

    def catalog(req: Request) -> Response:
        n = int(req.q("page", "0") or 0)
        return _json(pages[n] if n < len(pages) else [])

    def one_page(data: list) -> Any:
        return lambda req: _json(data if (req.q("page", "0") or "0") == "0" else [])

    server.route("/feeds/courses/", catalog)
    server.route("/feeds/news/", one_page(load(TEST_JSON / "mitpe_news.json")))
    server.route("/feeds/events/", one_page(load(TEST_JSON / "mitpe_events.json")))
    return {"MITPE_BASE_URL": f"{server.base_url}/"}


def sloan_routes(server: FixtureServer) -> dict[str, str]:
    server.route(SEE_TOKEN_PATH, token_handler, method="POST")
    server.route(
        "/see/api/courses",
        jwt_only(lambda _r: Response.file(TEST_JSON / "test_sloan_courses.json")),
    )
    server.route(
        "/see/api/course-offerings",
        jwt_only(lambda _r: Response.file(TEST_JSON / "test_sloan_runs.json")),
    )
    return {
        "SEE_API_URL": f"{server.base_url}/see/api/",
        "SEE_API_ACCESS_TOKEN_URL": f"{server.base_url}{SEE_TOKEN_PATH}",
        "SEE_API_CLIENT_ID": "e2e-client",
        "SEE_API_CLIENT_SECRET": "e2e-secret",
    }


def sloan_news_routes(server: FixtureServer) -> dict[str, str]:
    from urllib.parse import parse_qs

    from tests.sources.test_source_sloan_news import (
        aura_answer,
        built_community_page,
        built_news_item,
    )

    webinar = load(TEST_JSON / "sloan_webinars_output.json")  # the recorded Aura item
    page = Response(200, built_community_page(), {"Content-Type": "text/html"})
    server.route("/s/blog", page)
    server.route("/s/webinars", page)

    def aura(req: Request) -> Response:
        form = parse_qs(req.body.decode())
        params = json.loads(form["message"][0])["actions"][0]["params"]
        if params["contentType"] == "Card_Display_Item":
            return _json(aura_answer([webinar]))
        return _json(aura_answer([built_news_item(1), built_news_item(2)]))

    server.route("/s/sfsites/aura", aura, method="POST")
    return {"SLOAN_EXEC_BASE_URL": f"{server.base_url}/"}


def micromasters_routes(server: FixtureServer) -> dict[str, str]:
    from tests.sources.test_source_micromasters import built_catalog

    server.route("/api/v0/catalog/", _json(built_catalog()))
    return {"MICROMASTERS_CATALOG_API_URL": f"{server.base_url}/api/v0/catalog/"}


def oll_routes(server: FixtureServer) -> dict[str, str]:
    csv_file = FIXTURES / "learning_resources" / "data" / "oll_metadata.csv"
    server.route("/oll/metadata.csv", Response.file(csv_file, "text/csv"))
    return {"OLL_CSV_URL": f"{server.base_url}/oll/metadata.csv"}


def ovs_routes(server: FixtureServer) -> dict[str, str]:
    server.route("/api/v0/public/videos/", Response.file(TEST_JSON / "ovs_videos.json"))
    return {"OVS_API_BASE_URL": server.base_url}


def ol_events_routes(server: FixtureServer) -> dict[str, str]:
    """The recorded events page with its relationship documents included (one request)."""
    base = server.base_url
    page = load(TEST_JSON / "ol_events.json")
    related = [
        load(TEST_JSON / f"ol_events_{n}.json")
        for n in ("img_text", "img_src", "location", "audience", "topics")
    ]
    included = []
    for doc in related:
        data = doc.get("data")
        included += data if isinstance(data, list) else [data]
        included += doc.get("included") or []
    compound = {**page, "included": [r for r in included if isinstance(r, dict)]}
    compound["links"] = {k: v for k, v in (compound.get("links") or {}).items() if k != "next"}
    body = json.dumps(compound).replace("https://openlearning.mit.edu", base).encode()
    server.route("/jsonapi/node/event", Response(200, body, {"Content-Type": "application/json"}))
    return {"OL_EVENTS_BASE_URL": base}


def climate_routes(server: FixtureServer) -> dict[str, str]:
    from tests.sources.test_source_mit_climate import built_climate_article

    explainers = [built_climate_article(n) for n in (1, 2, 3)]
    asks = [built_climate_article(n, url=f"/ask-mit-climate/q-{n}") for n in (4, 5)]
    server.route("/feeds/explainers", _json(explainers))
    server.route("/feeds/ask-mit-climate", _json(asks))
    return {
        "MIT_CLIMATE_BASE_URL": server.base_url,
        "MIT_CLIMATE_EXPLAINERS_API_URL": f"{server.base_url}/feeds/explainers",
        "ASK_MIT_CLIMATE_API_URL": f"{server.base_url}/feeds/ask-mit-climate",
    }


def medium_routes(server: FixtureServer) -> dict[str, str]:
    rss = FIXTURES / "test_html" / "test_medium_mit_news.rss"
    server.route("/feed/open-learning", Response.file(rss, "application/rss+xml"))
    return {"MEDIUM_MIT_NEWS_URL": f"{server.base_url}/feed/open-learning"}


PODCAST_NAMES = ("chalk-radio.yaml",)


def podcast_routes(server: FixtureServer) -> dict[str, str]:
    """A GitHub contents-API listing of real open-podcast-data configs; each config is served
    with its rss_url pointing at the recorded RSS feed here (the rest of the file as recorded)."""
    base = server.base_url
    listing = []
    for n, name in enumerate(PODCAST_NAMES):
        config = yaml.safe_load((PODCAST_CONFIGS / name).read_bytes())
        config["rss_url"] = f"{base}/podcasts/rss/{n}"
        server.route(f"/podcasts/raw/{name}", Response(200, yaml.safe_dump(config).encode()))
        server.route(
            f"/podcasts/rss/{n}",
            Response.file(FIXTURES / "test_html" / "test_podcast.rss", "application/rss+xml"),
        )
        listing.append(
            {"name": name, "type": "file", "download_url": f"{base}/podcasts/raw/{name}"}
        )
    server.route("/podcasts/contents/podcasts", _json(listing))
    return {"PODCAST_CONFIG_URL": f"{base}/podcasts/contents/podcasts"}


YOUTUBE_KEY = "e2e-youtube-key"


def youtube_routes(server: FixtureServer) -> dict[str, str]:
    """The recorded Data API pages; the config is open-video-data's documented format for the
    recorded OCW channel (the YouTube transform tests' `built_config`)."""
    from tests.sources.test_source_youtube import built_config

    playlists = load(YT / "playlists.list.1.json")
    items = [load(YT / "playlistItems.list.1.json"), load(YT / "playlistItems.list_next.0.json")]
    videos = load(YT / "videos.list.1.json")

    def api(name: str):
        def handler(req: Request) -> Response:
            if req.q("key") != YOUTUBE_KEY:
                return _json({"error": {"code": 400, "message": "API key not valid"}}, 400)
            if name == "playlistItems":
                return _json(items[1] if req.q("pageToken") == "CDIQAA" else items[0])
            if name == "videos":
                wanted = set((req.q("id") or "").split(","))
                return _json({**videos, "items": [v for v in videos["items"] if v["id"] in wanted]})
            return _json(playlists)

        return handler

    for name in ("playlists", "playlistItems", "videos"):
        server.route(f"/youtube/v3/{name}", api(name))
    server.route(
        "/youtube/channels.yaml", Response(200, yaml.safe_dump(built_config()[:1]).encode())
    )
    return {
        "YOUTUBE_DEVELOPER_KEY": YOUTUBE_KEY,
        "YOUTUBE_CONFIG_URL": f"{server.base_url}/youtube/channels.yaml",
        "YOUTUBE_API_BASE_URL": f"{server.base_url}/youtube/v3",
        # Captions: unrouted paths answer 404 (no track) unless a test routes /youtube/api/timedtext
        "YOUTUBE_CAPTIONS_BASE_URL": f"{server.base_url}/youtube",
    }


def posthog_bucket(s3: MotoS3) -> dict[str, str]:
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if POSTHOG_BUCKET not in existing:
        client.create_bucket(Bucket=POSTHOG_BUCKET)
    recorded = TEST_JSON / "posthog" / "test_data.parquet.zst"
    client.put_object(
        Bucket=POSTHOG_BUCKET, Key="exports/recorded.parquet.zst", Body=recorded.read_bytes()
    )
    return {"POSTHOG_EVENT_S3_BUCKET": POSTHOG_BUCKET, "POSTHOG_EVENT_S3_PREFIX": "exports/"}


ROUTES = (
    edx_routes,
    xpro_routes,
    mitpe_routes,
    sloan_routes,
    sloan_news_routes,
    micromasters_routes,
    oll_routes,
    ovs_routes,
    ol_events_routes,
    climate_routes,
    medium_routes,
    podcast_routes,
    youtube_routes,
)


@pytest.fixture(scope="session")
def sources_server(s3_server: MotoS3) -> Iterator[SourcesServer]:
    """Every source's recorded payloads at its real paths, and the settings that point there."""
    with FixtureServer() as server:
        env: dict[str, str] = {}
        for routes in ROUTES:
            env.update(routes(server))
        env.update(posthog_bucket(s3_server))
        yield SourcesServer(server, env)


@pytest.fixture(scope="package")
async def catalog_holds_only_this_suite(app):
    """The session's catalog is shared: other suites (archives, gRPC, MITx Online e2e) leave
    courses of these same sources behind, which these tests' exact counts and prune-guard
    assertions must not see. Clear them once, before this suite's first test."""
    from sources import all_sources

    etl_sources = sorted({s.etl_source for s in all_sources().values()})
    async with app.stores.pool.acquire() as conn:
        await conn.execute(
            "DELETE FROM learning_resource WHERE etl_source = ANY($1::text[])", etl_sources
        )
        await conn.execute("DELETE FROM feed_item WHERE etl_source = ANY($1::text[])", etl_sources)


@pytest.fixture
async def sources_app(app, sources_server, catalog_holds_only_this_suite, monkeypatch):
    """The session's app, with every source's settings pointing at the recorded payloads for
    this test only (sources read settings when their activity runs; nothing leaks to others)."""
    for key, value in sources_server.env.items():
        monkeypatch.setenv(key, value)
    return app


async def ingest(app, source: str, *, force_prune: bool = False, **options: str) -> IngestResult:
    result = await app.client.execute_workflow(
        "IngestSourceWorkflow",
        IngestSourceInput(source=source, force_prune=force_prune, options=options),
        id=unique_id(f"test/ingest/{source}"),
        task_queue="default",
        result_type=IngestResult,
    )
    if result.embed_workflow_id:  # the run left its embed child running: one run, fully done
        await app.client.get_workflow_handle(result.embed_workflow_id).result()
    return result


async def search_ids(address: str, query: str, mode: int) -> list[str]:
    """The readable ids a gRPC SearchResources call answers (first 20) in one mode."""
    import grpc

    from search_service.pb import search_pb2, search_pb2_grpc

    async with grpc.aio.insecure_channel(address) as channel:
        response = await search_pb2_grpc.SearchServiceStub(channel).SearchResources(
            search_pb2.SearchResourcesRequest(query=query, mode=mode, page_size=20), timeout=10
        )
    return [r.resource.readable_id for r in response.results]


async def stored_transcript(app, etl_source: str, readable_id: str) -> str | None:
    """The transcript the catalog holds for one video of a source."""
    async with app.stores.pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT data::jsonb -> 'details' ->> 'transcript' FROM learning_resource"
            " WHERE etl_source = $1 AND readable_id = $2 AND resource_type = 'video'",
            etl_source,
            readable_id,
        )
