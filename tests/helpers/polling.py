"""Polling with a deadline: the one way tests wait for something eventually true.

`check` returns something truthy when done (that value is returned). It may raise to fail at once
(a process that exited, say); exceptions listed in `retry_on` count as "not yet" instead (a server
that refuses connections while it starts). `what` names what is awaited in the timeout error; a
callable is called then, so the error can carry the state at the end (a log, the last answers).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

Description = str | Callable[[], str]


def _timed_out(what: Description, within: float, last: Any) -> AssertionError:
    text = what() if callable(what) else what
    return AssertionError(f"timed out after {within}s waiting for {text} (last: {last!r})")


async def eventually(
    check: Callable[[], Any],
    what: Description,
    within: float = 30.0,
    every: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = (),
) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail after `within` s."""
    deadline = time.monotonic() + within
    while True:  # checks at least once, even with no time left
        try:
            last = check()
            if asyncio.iscoroutine(last):
                last = await last
        except retry_on as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise _timed_out(what, within, last)
        await asyncio.sleep(every)


def eventually_sync(
    check: Callable[[], Any],
    what: Description,
    within: float = 30.0,
    every: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = (),
) -> Any:
    """`eventually` for code that is not async (threads, subprocess watchers): blocks."""
    deadline = time.monotonic() + within
    while True:  # checks at least once, even with no time left
        try:
            last = check()
        except retry_on as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise _timed_out(what, within, last)
        time.sleep(every)
