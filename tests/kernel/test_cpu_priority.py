"""Background CPU work (the embedding pass's encoder) runs at a lower priority than the catalog
path, in threads that never get it back."""

from __future__ import annotations

import os
import threading

from learnflow.cpu_priority import (
    BACKGROUND_NICE_INCREMENT,
    background_threads,
    lower_this_thread,
    this_thread_nice,
)


def _where() -> tuple[int, int]:
    return threading.get_native_id(), this_thread_nice()


async def test_background_threads_run_at_a_lower_priority_than_the_loop():
    loop_nice = this_thread_nice()
    threads = background_threads(2, "test-background")
    tid, nice = await threads.run(_where)
    assert tid != threading.get_native_id()
    assert nice == min(19, loop_nice + BACKGROUND_NICE_INCREMENT) > loop_nice
    assert this_thread_nice() == loop_nice  # the caller keeps its own priority
    assert await threads.run(sum, [1, 2, 3]) == 6


def test_a_thread_is_only_ever_lowered():
    seen = {}

    def in_thread():
        start = this_thread_nice()
        lower_this_thread(3)
        seen["lowered"] = this_thread_nice() - start
        lower_this_thread(-3)  # raising it back would need privileges: a no-op
        lower_this_thread(0)
        seen["after"] = this_thread_nice() - start
        lower_this_thread(100)
        seen["capped"] = this_thread_nice()

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == {"lowered": 3, "after": 3, "capped": 19}
    assert os.getpriority(os.PRIO_PROCESS, 0) == this_thread_nice()  # this thread untouched
