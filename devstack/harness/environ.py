"""Environment variables set for a block, then restored (unset ones unset again)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def restored_environ(names: Iterable[str]) -> Iterator[None]:
    """The named variables as they are now, put back when the block ends."""
    saved = {k: os.environ.get(k) for k in names}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """`values` set in the environment for the block."""
    with restored_environ(values):
        os.environ.update(values)
        yield
