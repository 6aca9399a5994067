"""`bench.machine_cpu` splits the machine's CPU over a window by process: what bench.ingest's
`first.cpu_seconds_by_process` reports (which process bounds the catalog figure)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from bench import machine_cpu


def _spin(seconds: float, done: threading.Event, release: threading.Event) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    done.set()
    release.wait()  # alive at the second snapshot, as the worker's to_thread threads are


def test_cpu_is_split_by_process_tree_and_by_thread_of_this_process():
    # a child process that burns ~0.3 s of CPU: its own group, named by its root
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read(1)\nimport time\n"
         "end = time.process_time() + 0.3\nwhile time.process_time() < end: pass"],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    roots = {"spinner": child.pid}
    before = machine_cpu.snapshot(roots)
    done, release = threading.Event(), threading.Event()
    worker = threading.Thread(target=_spin, args=(0.2, done, release), name="asyncio_7")
    worker.start()
    done.wait()
    # ended inside the window: counted through this process's reaped time (not the spinner's)
    assert child.stdin is not None
    child.stdin.write(b"x")
    child.stdin.flush()
    child.wait()
    after = machine_cpu.snapshot(roots)
    release.set()
    worker.join()
    out = machine_cpu.by_process(before, after)
    ours = out["bench (worker + bench)"]
    assert isinstance(ours, float) and ours >= 0.45  # 0.2 in the thread + 0.3 reaped
    threads = out["bench_threads"]
    assert isinstance(threads, dict)
    assert threads["to_thread (load_page CPU, fetch parse)"] >= 0.19
    assert out["machine_busy"] >= 0.45  # type: ignore[operator]


def test_a_live_child_is_its_roots_group():
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nend = time.process_time() + 0.3\n"
         "while time.process_time() < end: pass\nprint('spun', flush=True)\nsys.stdin.read(1)"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    try:
        roots = {"spinner": child.pid}
        before = machine_cpu.snapshot(roots)
        assert child.stdout.readline() == b"spun\n"  # its 0.3 s are spent, it still lives
        out = machine_cpu.by_process(before, machine_cpu.snapshot(roots))
        assert out["spinner"] >= 0.2  # type: ignore[operator]
        assert "spinner" not in out["bench_threads"]  # type: ignore[operator]
    finally:
        child.stdin.write(b"x")
        child.stdin.close()
        child.wait()


def test_collector_time_counts_each_generations_collections_while_on():
    import gc

    with machine_cpu.CollectorTime() as collector:
        gc.collect(0)
        gc.collect(2)
    gc.collect()  # off: not counted
    summary = collector.summary()
    assert summary["gen0"]["collections"] >= 1  # type: ignore[index]
    assert summary["gen2"]["collections"] == 1  # type: ignore[index]
    assert summary["gen2"]["seconds"] > 0  # type: ignore[index]
