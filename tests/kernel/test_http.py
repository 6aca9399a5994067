"""SourceHttp against a real local HTTP server: timeouts, the size cap, retries only for 429/5xx
(Retry-After honoured), redirects never followed, only the source's hosts, no private addresses."""

from __future__ import annotations

import threading
import time

import pytest

from devstack.harness.fixture_server import FixtureServer, Request, Response
from learnflow.http import PermanentHttpError, SourceHttp, TransientHttpError


@pytest.fixture
def server():
    with FixtureServer() as srv:
        yield srv


def client(**kw) -> SourceHttp:
    kw.setdefault("allow_private", True)
    kw.setdefault("max_backoff", 0.01)
    return SourceHttp({"127.0.0.1"}, **kw)


async def test_timeout_is_transient_and_retried(server):
    release = threading.Event()

    def slow(_req: Request) -> Response:
        release.wait(5)  # longer than the client's timeout; released at the end of the test
        return Response(200, b"late")

    server.route("/slow", slow)
    async with client(timeout=0.2, attempts=2) as http:
        started = time.monotonic()
        with pytest.raises(TransientHttpError, match="Timeout"):
            await http.get_bytes(f"{server.base_url}/slow")
        elapsed = time.monotonic() - started
    release.set()
    assert server.hits("/slow") == 2
    assert elapsed < 3  # two 0.2 s timeouts, not the server's 5 s


async def test_response_over_the_cap_is_refused(server):
    server.route("/big", Response(200, b"x" * 2048))
    server.route("/small", Response(200, b"x" * 1024))
    async with client(max_bytes=1024) as http:
        assert len(await http.get_bytes(f"{server.base_url}/small")) == 1024
        with pytest.raises(PermanentHttpError, match="over the cap"):
            await http.get_bytes(f"{server.base_url}/big")
    assert server.hits("/big") == 1  # permanent: not retried


async def test_429_with_retry_after_then_success(server):
    server.route("/page", Response(200, b"ok"))
    server.inject("/page", Response(429, b"slow down", {"Retry-After": "1"}))
    async with client(max_backoff=5) as http:
        started = time.monotonic()
        assert await http.get_bytes(f"{server.base_url}/page") == b"ok"
        assert time.monotonic() - started >= 0.9  # waited what the server asked
    assert server.hits("/page") == 2


async def test_retry_after_is_capped(server):
    server.route("/page", Response(200, b"ok"))
    server.inject("/page", Response(429, b"", {"Retry-After": "3600"}))
    async with client(max_backoff=0.05) as http:
        started = time.monotonic()
        assert await http.get_bytes(f"{server.base_url}/page") == b"ok"
        assert time.monotonic() - started < 2


async def test_5xx_is_retried_until_attempts_run_out(server):
    server.route("/flaky", Response(200, b"ok"))
    server.inject("/flaky", Response(500), Response(502), Response(503))
    async with client(attempts=4) as http:
        assert await http.get_bytes(f"{server.base_url}/flaky") == b"ok"
    assert server.hits("/flaky") == 4

    server.route("/down", Response(503))
    async with client(attempts=3) as http:
        with pytest.raises(TransientHttpError, match="503"):
            await http.get_bytes(f"{server.base_url}/down")
    assert server.hits("/down") == 3


@pytest.mark.parametrize("status", [400, 401, 403, 410])
async def test_other_4xx_are_permanent_and_not_retried(server, status):
    server.route("/no", Response(status))
    async with client() as http:
        with pytest.raises(PermanentHttpError, match=str(status)):
            await http.get_bytes(f"{server.base_url}/no")
    assert server.hits("/no") == 1


async def test_404_is_an_error_unless_asked(server):
    async with client() as http:
        assert await http.get_bytes(f"{server.base_url}/missing", not_found_ok=True) is None
        with pytest.raises(PermanentHttpError, match="404"):
            await http.get_bytes(f"{server.base_url}/missing")


async def test_redirects_are_not_followed(server):
    with FixtureServer() as other:
        other.route("/target", Response(200, b"elsewhere"))
        for location in (f"{other.base_url}/target", "http://169.254.169.254/latest/meta-data"):
            server.route("/moved", Response(302, b"", {"Location": location}))
            async with client() as http:
                with pytest.raises(PermanentHttpError, match="redirect"):
                    await http.get_bytes(f"{server.base_url}/moved")
        assert other.hits("/target") == 0


async def test_only_the_sources_hosts(server):
    server.route("/ok", Response(200, b"ok"))
    async with SourceHttp({"api.example.org"}, allow_private=True) as http:
        with pytest.raises(PermanentHttpError, match="not among the source's hosts"):
            await http.get_bytes(f"{server.base_url}/ok")
        http.allow(f"{server.base_url}/config.yaml")  # a configured URL joins the list
        assert await http.get_bytes(f"{server.base_url}/ok") == b"ok"
    assert server.hits("/ok") == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/ok",
        "http://10.0.0.5/ok",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:{port}/ok",
    ],
)
async def test_private_addresses_are_refused_unless_allowed(server, url):
    server.route("/ok", Response(200, b"ok"))
    target = url.format(port=server.port)
    async with SourceHttp(None, allow_private=False) as http:
        with pytest.raises(PermanentHttpError, match="private address"):
            await http.get_bytes(target)
    assert server.hits("/ok") == 0


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "http://user:pw@127.0.0.1/ok", "http://127.0.0.1\\@evil.example/"]
)
async def test_odd_urls_are_refused(url):
    async with client() as http:
        with pytest.raises(PermanentHttpError, match="refused"):
            await http.get_bytes(url)


async def test_next_link_to_another_host_is_refused(server):
    server.route(
        "/pages", Response.json({"results": [1], "next": "https://evil.example/pages?page=2"})
    )
    async with client() as http:
        got = []
        with pytest.raises(PermanentHttpError, match="leaves"):
            async for page in http.paginate(f"{server.base_url}/pages"):
                got.append(page.body)
    assert len(got) == 1


async def test_user_agent_and_gzip(server):
    import gzip

    seen: list[str] = []

    def handler(req: Request) -> Response:
        seen.append(req.headers.get("user-agent", ""))
        return Response(200, gzip.compress(b"hello"), {"Content-Encoding": "gzip"})

    server.route("/gz", handler)
    async with client(user_agent="learnflow-test") as http:
        assert await http.get_bytes(f"{server.base_url}/gz") == b"hello"
    assert seen == ["learnflow-test"]
