"""The fixture server's error output: a client that went away mid-answer (the fetch drops pages
it requested ahead) prints nothing; any other error in a request still prints its traceback.
And `answer_once` (a benchmark's static upstream) calls a route's handler once per request."""

from __future__ import annotations

import json
from urllib.request import urlopen

import pytest

from devstack.harness.fixture_server import FixtureServer, Request, Response


def _printed_for(capsys, error: Exception) -> str:
    """What the server prints when a request's handling raised `error`."""
    server = FixtureServer()
    try:
        try:
            raise error
        except Exception:
            server._httpd.handle_error(None, ("127.0.0.1", 1))
    finally:
        server._httpd.server_close()
    return capsys.readouterr().err


@pytest.mark.parametrize("gone", [BrokenPipeError, ConnectionResetError])
def test_client_gone_mid_answer_prints_nothing(capsys, gone):
    assert _printed_for(capsys, gone("the client closed its end")) == ""


def test_other_errors_still_print(capsys):
    err = _printed_for(capsys, ValueError("a handler bug"))
    assert "Traceback" in err and "ValueError: a handler bug" in err


def test_answer_once_repeats_each_distinct_answer():
    calls: list[str] = []

    def handler(req: Request) -> Response:
        calls.append(req.q("page", "1") or "1")
        return Response.json({"page": calls[-1], "call": len(calls)})

    with FixtureServer() as server:
        server.route("/items", handler)
        server.answer_once()
        get = [
            json.loads(urlopen(f"{server.base_url}/items{q}", timeout=5).read())
            for q in ("", "?page=2", "", "?page=2")
        ]
    assert calls == ["1", "2"]  # the repeated requests never reached the handler
    assert get == [{"page": "1", "call": 1}, {"page": "2", "call": 2}] * 2
