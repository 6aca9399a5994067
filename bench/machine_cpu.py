"""Where the whole machine's CPU went over a window (bench.ingest's `first.cpu_seconds_by_process`).

A snapshot reads every process's user + system time and the time of the children it reaped
(`psutil`), and the bench process's per-thread times; `by_process(before, after)` groups the
deltas: the bench process (worker + bench, in one process: its event loop, the threads that run
load_page's CPU work, the encoder's threads, Temporal's Rust core), its children (the CPU pool,
the fixture upstream, the vector store's optimize), the run's Postgres (the postmaster's tree)
and Temporal dev server, and the rest of the machine (other users' work: noise, not the run's: the kernel's busy
time less the run's).
A process that started and ended inside the window counts through its parent's reaped time when
the parent is one of these; `machine` is the kernel's busy time over all cores (/proc/stat).
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psutil

_TICK = os.sysconf("SC_CLK_TCK")
OTHERS = "rest of the machine (other users)"


@dataclass
class Snapshot:
    # (pid, create_time) -> (group, cpu seconds incl. reaped children)
    procs: dict[tuple[int, float], tuple[str, float]] = field(default_factory=dict)
    threads: dict[str, float] = field(default_factory=dict)  # thread group -> cpu seconds
    machine_busy: float = 0.0


def _machine_busy() -> float:
    """Busy CPU seconds of all cores since boot (/proc/stat: all but idle and iowait)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(x) for x in fields[:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICK


def _thread_group(tid: int, names: dict[int, str]) -> str:
    """A bench-process thread by what runs on it: Python's names, else the kernel's comm."""
    name = names.get(tid)
    if name is None:
        with contextlib.suppress(OSError):
            name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
    name = name or "?"
    if name == "MainThread":
        return "event_loop"
    if name.startswith("asyncio_"):
        return "to_thread (load_page CPU, fetch parse)"
    if name.startswith("tokio") or name.startswith("temporal"):
        return "temporal_core (rust)"
    if name.startswith("ThreadPoolExecutor") or name.startswith("temporal_activity"):
        return "activity_threads"
    return "other:" + name.rstrip("0123456789-_ ")


def snapshot(roots: dict[str, int | None]) -> Snapshot:
    """`roots`: group name -> pid whose process tree is that group (None: absent). The bench
    process's own tree is `bench` (itself) and `bench_children:<name>`."""
    me = os.getpid()
    group_of: dict[int, str] = {}
    for name, pid in roots.items():
        if pid is None:
            continue
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            group_of[pid] = name
            for child in root.children(recursive=True):
                group_of.setdefault(child.pid, name)
    # multiprocessing's children by their names (the fixture upstream is "fixture-server")
    named = {p.pid: p.name for p in multiprocessing.active_children() if p.pid}
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(me).children(recursive=True):
            if child.pid not in group_of:
                group_of[child.pid] = "bench_children:" + (
                    named.get(child.pid) or _child_name(child)
                )
    snap = Snapshot(machine_busy=_machine_busy())
    for pid in [me, *group_of]:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            t = proc.cpu_times()
            group = "bench (worker + bench)" if pid == me else group_of[pid]
            seconds = t.user + t.system + t.children_user + t.children_system
            snap.procs[(pid, proc.create_time())] = (group, seconds)
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id}
    threads: dict[str, float] = defaultdict(float)
    with contextlib.suppress(psutil.Error):
        for t in psutil.Process(me).threads():
            threads[_thread_group(t.id, names)] += t.user_time + t.system_time
    snap.threads = dict(threads)
    return snap


def _child_name(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        cmd = " ".join(proc.cmdline())
        if "forkserver" in cmd or "multiprocessing" in cmd:
            return "multiprocessing (cpu pool / fixture upstream / optimize)"
        return proc.name()
    return "?"


def by_process(before: Snapshot, after: Snapshot) -> dict[str, object]:
    """CPU seconds between two snapshots, by group, biggest first; the bench process by thread."""
    groups: dict[str, float] = defaultdict(float)
    for key, (group, seconds) in after.procs.items():
        prev = before.procs.get(key)
        groups[group] += seconds - (prev[1] if prev else 0.0)
    # The rest of the machine as the kernel's busy time less the run's: a process's reaped
    # time jumps by a whole child's life when it reaps one (a test runner's), so others' own
    # counters say little about the window.
    machine = after.machine_busy - before.machine_busy
    groups[OTHERS] = max(0.0, machine - sum(v for k, v in groups.items() if k != OTHERS))
    threads = {k: v - before.threads.get(k, 0.0) for k, v in after.threads.items()}
    out: dict[str, object] = {
        k: round(v, 2) for k, v in sorted(groups.items(), key=lambda kv: -kv[1]) if v >= 0.005
    }
    out["bench_threads"] = {
        k: round(v, 2) for k, v in sorted(threads.items(), key=lambda kv: -kv[1]) if v >= 0.005
    }
    out["machine_busy"] = round(machine, 2)
    return out


class CollectorTime:
    """Wall time the bench process spent in the cyclic collector, by generation, while `on`
    (gc.callbacks: each collection's start and stop on the thread that ran it)."""

    def __init__(self) -> None:
        self.seconds: dict[int, float] = defaultdict(float)
        self.count: dict[int, int] = defaultdict(int)
        self._started: dict[int, float] = {}

    def _callback(self, phase: str, info: dict) -> None:
        tid = threading.get_ident()
        if phase == "start":
            self._started[tid] = time.perf_counter()
        elif tid in self._started:
            generation = info.get("generation", -1)
            self.seconds[generation] += time.perf_counter() - self._started.pop(tid)
            self.count[generation] += 1

    def __enter__(self) -> CollectorTime:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, object]:
        return {
            f"gen{g}": {"collections": self.count[g], "seconds": round(self.seconds[g], 3)}
            for g in sorted(self.count)
        }
