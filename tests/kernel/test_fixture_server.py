"""The fixture server's error output: a client that went away mid-answer (the fetch drops pages
it requested ahead) prints nothing; any other error in a request still prints its traceback."""

from __future__ import annotations

import pytest

from devstack.harness.fixture_server import FixtureServer


@pytest.mark.parametrize("gone", [BrokenPipeError, ConnectionResetError])
def test_client_gone_mid_answer_prints_nothing(capsys, gone):
    server = FixtureServer()
    try:
        try:
            raise gone("the client closed its end")
        except OSError:
            server._httpd.handle_error(None, ("127.0.0.1", 1))
    finally:
        server._httpd.server_close()
    assert capsys.readouterr().err == ""


def test_other_errors_still_print(capsys):
    server = FixtureServer()
    try:
        try:
            raise ValueError("a handler bug")
        except ValueError:
            server._httpd.handle_error(None, ("127.0.0.1", 1))
    finally:
        server._httpd.server_close()
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: a handler bug" in err
