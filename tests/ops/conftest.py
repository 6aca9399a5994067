"""Fixtures for the operations tests: a Temporal client on the session's dev server, and the
environment the `learn` CLI reads (settings are re-read after every change)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from learnflow.settings import Settings, reset_settings


def clean_env(**extra: str) -> dict[str, str]:
    """This environment minus every learnflow setting (the test session points them at its own
    services): a `learn` subprocess sees what a user's fresh shell has, plus `extra`."""
    names = {name.upper() for name in Settings.model_fields} | {"LEARNFLOW_ENV_FILE"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    return {**env, **extra}


@pytest.fixture
async def temporal_client(temporal_server):
    from worker import connect

    return await connect(temporal_server.address)


@pytest.fixture
def cli_env(temporal_server) -> Iterator[Callable[..., None]]:
    """The environment `learn` reads when run through typer's CliRunner: TEMPORAL_ADDRESS of the
    session's dev server, plus what a test sets with the returned function. Restored after."""
    saved = dict(os.environ)

    def set_env(**values: str) -> None:
        os.environ.update(values)
        reset_settings()

    set_env(TEMPORAL_ADDRESS=temporal_server.address)
    yield set_env
    os.environ.clear()
    os.environ.update(saved)
    reset_settings()
