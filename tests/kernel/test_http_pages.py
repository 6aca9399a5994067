"""SourceHttp.paginate against a real local HTTP server: numbered DRF pages are requested ahead,
side by side, yet only the `next` chain is yielded, in order; each page is parsed once."""

from __future__ import annotations

import gc
import json
import threading
import uuid

import pytest

from devstack.harness.fixture_server import FixtureServer, Request, Response
from learnflow.http import SourceHttp, loads


@pytest.fixture
def server():
    with FixtureServer() as srv:
        yield srv


def client(**kw) -> SourceHttp:
    return SourceHttp({"127.0.0.1"}, allow_private=True, max_backoff=0.01, **kw)


def numbered(server: FixtureServer, items: list[int], size: int, hold: dict[int, threading.Event]):
    """A DRF endpoint at /items (`?page=N`); page N waits for `hold[N]` (up to 5 s) first."""
    asked: dict[int, threading.Event] = {n: threading.Event() for n in range(1, 20)}

    def handler(req: Request) -> Response:
        page = int(req.q("page", "1") or 1)
        asked[page].set()
        if page in hold and not hold[page].wait(5):
            return Response.json({"detail": "held page never released"}, status=400)
        chunk = items[(page - 1) * size : page * size]
        more = page * size < len(items)
        nxt = f"{server.base_url}/items?page={page + 1}&live=true" if more else None
        return Response.json({"count": len(items), "next": nxt, "results": chunk})

    server.route("/items", handler)
    return asked


async def walk(http: SourceHttp, url: str) -> list[tuple[str, list[int]]]:
    return [(p.url, p.data["results"]) async for p in http.paginate(url)]


async def test_numbered_pages_are_requested_side_by_side(server):
    # Page 2 answers only once page 3 was asked for: one page at a time, the walk stalls.
    hold = {2: threading.Event()}
    asked = numbered(server, list(range(10)), 3, hold)
    threading.Thread(target=lambda: asked[3].wait(10) and hold[2].set(), daemon=True).start()
    async with client(page_prefetch=2) as http:
        pages = await walk(http, f"{server.base_url}/items?live=true")
    assert [items for _, items in pages] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert [url.rsplit("?", 1)[1] for url, _ in pages] == [
        "live=true", "page=2&live=true", "page=3&live=true", "page=4&live=true"
    ]  # fmt: skip
    assert server.hits("/items") == 4  # nothing requested twice


async def test_without_prefetch_pages_come_one_after_another(server):
    numbered(server, list(range(10)), 3, {})
    read = 0
    async with client(page_prefetch=0) as http:
        async for _page in http.paginate(f"{server.base_url}/items"):
            read += 1
            assert server.hits("/items") == read  # nothing asked ahead of the page being read
    assert read == 4


async def test_only_the_next_chain_is_yielded_when_the_catalog_moves(server):
    # The first page promises 3 numbered pages; page 2 then leads elsewhere (the catalog moved):
    # the prefetched page 3 is dropped, its error (404) with it, and the walk follows `next`.
    def first(req: Request) -> Response:
        if req.q("page", "1") == "2":
            nxt = f"{server.base_url}/moved?cursor=b"
            return Response.json({"count": 6, "next": nxt, "results": [3, 4]})
        if req.q("page", "1") == "3":
            return Response.json({"detail": "gone"}, status=404)
        nxt = f"{server.base_url}/items?page=2"
        return Response.json({"count": 6, "next": nxt, "results": [1, 2]})

    server.route("/items", first)
    server.route("/moved", Response.json({"count": 6, "next": None, "results": [5, 6]}))
    async with client(page_prefetch=4) as http:
        pages = await walk(http, f"{server.base_url}/items")
    assert [items for _, items in pages] == [[1, 2], [3, 4], [5, 6]]
    assert pages[2][0].endswith("/moved?cursor=b")


def test_loads_parses_with_the_collector_paused_and_restores_it():
    body = json.dumps({"results": [{"id": n, "tags": [n]} for n in range(1000)]}).encode()
    assert gc.isenabled()
    assert loads(body)["results"][999] == {"id": 999, "tags": [999]}
    assert gc.isenabled()
    gc.disable()
    try:
        loads(body)
        assert not gc.isenabled()  # a caller's own pause is left alone
    finally:
        gc.enable()


def test_overlapping_pauses_keep_the_collector_off_until_the_last_one_ends():
    """Pages transformed side by side in threads: the first to finish must not switch the
    collector back on under another's burst."""
    import threading

    from learnflow.http import collector_paused

    entered, finish_first, first_done = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with collector_paused():
            entered.set()
            finish_first.wait()
        first_done.set()

    assert gc.isenabled()
    thread = threading.Thread(target=first)
    thread.start()
    entered.wait()
    with collector_paused():
        finish_first.set()
        first_done.wait()
        assert not gc.isenabled()  # the other page's pause ended; this one's has not
    thread.join()
    assert gc.isenabled()


def _results(data) -> tuple:
    return tuple(data["results"])


async def test_a_page_served_again_unchanged_is_not_parsed_again(server, monkeypatch):
    """What the walk and an extractor derive from a page is kept by its sha256: an unchanged
    re-run's pages are not parsed again; a page whose bytes changed is."""
    import learnflow.http as http_module

    parsed: list[bytes] = []

    def counting_loads(body: bytes):
        parsed.append(body)
        return loads(body)

    monkeypatch.setattr(http_module, "loads", counting_loads)
    tag = uuid.uuid4().hex  # bytes no other test served (the memory is process-wide)
    items = [f"{tag}-{n}" for n in range(7)]
    numbered(server, items, 3, {})
    url = f"{server.base_url}/items?live=true"

    async def derived() -> list[tuple]:
        async with client(page_prefetch=2) as http:
            return [p.derive(_results) async for p in http.paginate(url)]

    expected = [tuple(items[:3]), tuple(items[3:6]), tuple(items[6:])]
    assert await derived() == expected
    assert len(parsed) == 3  # each page once: its links and the extractor's value
    parsed.clear()
    assert await derived() == expected
    assert parsed == []
    async with client() as http:  # the parsed page is still there when asked for
        pages = http.paginate(url)
        first = await anext(pages)
        await pages.aclose()
        assert first.data["results"] == items[:3] and len(parsed) == 1
    parsed.clear()
    items[4] = f"{tag}-changed"
    assert await derived() == [expected[0], (items[3], items[4], items[5]), expected[2]]
    assert len(parsed) == 1 and b"-changed" in parsed[0]
