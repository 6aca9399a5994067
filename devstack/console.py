"""What `learn up` shows a person: the addresses, what to try, then each first run as it goes.

The runs are read from Temporal's visibility (the same search attributes the UI filters on), so
the console says what the UI says. On a terminal it is a live table (rich) that settles when the
first runs are done; on a pipe or a file, one plain line per change. Output never breaks the
shutdown: a stream whose reader went away (`| tee` stopped by the same Ctrl-C) goes quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from temporalio.common import SearchAttributeKey

from learnflow import search_attributes as sa

# Temporal's own attribute on a run a schedule started (what the UI's schedule page lists).
SCHEDULED_BY = SearchAttributeKey.for_keyword("TemporalScheduledById")

# Top-level runs of a source (their child index/embed workflows carry the same Source).
RUN_TYPES = (
    "IngestSourceWorkflow",
    "IngestArchivesWorkflow",
    "IngestOcwWorkflow",
    "EmbedResourcesWorkflow",
    "PurgeContentFilesWorkflow",
)


class SafeStream(io.TextIOBase):
    """A text stream that never raises on write: after EPIPE/EIO (a closed pipe, a gone
    terminal) its descriptor is pointed at /dev/null, so later writes, the interpreter's final
    flush and native code writing to the same descriptor all succeed silently."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):
                self._break()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._break()

    def _break(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def isatty(self) -> bool:
        return not self.broken and self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")


def protect_std_streams() -> None:
    """Route this process's stdout/stderr through `SafeStream` (idempotent)."""
    if not isinstance(sys.stdout, SafeStream):
        sys.stdout = SafeStream(sys.stdout)
    if not isinstance(sys.stderr, SafeStream):
        sys.stderr = SafeStream(sys.stderr)


@dataclass
class RunRow:
    """One expected first run: a schedule's (or the demo OCW run's) newest run since `learn up`."""

    key: str  # schedule id, or the workflow id of a run started without a schedule
    state: str = "waiting"  # waiting | running | ok | refused | skipped | failed
    upserted: int | None = None
    unpublished: int | None = None
    quarantined: int | None = None
    seconds: float | None = None

    @property
    def done(self) -> bool:
        return self.state not in ("waiting", "running")

    def counts(self) -> str:
        parts = [
            f"{name} {value}"
            for name, value in (
                ("upserted", self.upserted),
                ("unpublished", self.unpublished),
                ("quarantined", self.quarantined),
            )
            if value is not None
        ]
        return ", ".join(parts)


def row_state(status: str, outcome: str | None) -> str:
    """A run's state for people: ok / refused (prune guard) / skipped / failed / running."""
    if status == "running":
        return "running"
    if status != "completed":
        return "failed"  # failed, terminated, timed out, canceled
    if outcome == "prune_refused":
        return "refused"
    if outcome in ("skipped", "failed_partial"):
        return "skipped" if outcome == "skipped" else "failed"
    return "ok"


@dataclass
class RunBoard:
    """The first runs `learn up` started, refreshed from Temporal's visibility."""

    client: Any
    since: datetime
    rows: dict[str, RunRow] = field(default_factory=dict)

    def expect(self, keys: list[str]) -> None:
        for key in keys:
            self.rows.setdefault(key, RunRow(key))

    @property
    def settled(self) -> bool:
        return all(r.done for r in self.rows.values())

    async def refresh(self) -> list[RunRow]:
        """Read the runs started since `since`; returns the rows whose state changed."""
        types = " OR ".join(f"WorkflowType = '{t}'" for t in RUN_TYPES)
        query = f"({types}) AND StartTime >= '{self.since.isoformat().replace('+00:00', 'Z')}'"
        newest: dict[str, Any] = {}
        async for wf in self.client.list_workflows(query):
            key = wf.typed_search_attributes.get(SCHEDULED_BY) or wf.id
            if key in self.rows and (key not in newest or wf.start_time > newest[key].start_time):
                newest[key] = wf
        changed = []
        for key, wf in newest.items():
            row = self.rows[key]
            attrs = wf.typed_search_attributes
            status = wf.status.name.lower() if wf.status else "running"
            before = row.state
            row.state = row_state(status, attrs.get(sa.OUTCOME))
            row.upserted = attrs.get(sa.UPSERTED)
            row.unpublished = attrs.get(sa.UNPUBLISHED)
            row.quarantined = attrs.get(sa.QUARANTINED)
            if wf.close_time and wf.start_time:
                row.seconds = (wf.close_time - wf.start_time).total_seconds()
            if row.state != before:
                changed.append(row)
        return changed

    def summary(self) -> str:
        states = [r.state for r in self.rows.values()]
        parts = [f"{states.count(s)} {s}" for s in ("ok", "refused", "skipped", "failed")]
        return ", ".join(p for p in parts if not p.startswith("0 ")) or "nothing ran"

    def table(self):
        from rich.table import Table

        styles = {"ok": "green", "refused": "yellow", "failed": "red", "running": "cyan"}
        table = Table("run", "state", "upserted", "unpub.", "quar.", "took", box=None)
        for row in sorted(self.rows.values(), key=lambda r: r.key):
            table.add_row(
                row.key,
                f"[{styles.get(row.state, 'dim')}]{row.state}[/]",
                *("-" if v is None else str(v) for v in (row.upserted, row.unpublished)),
                "-" if row.quarantined is None else str(row.quarantined),
                "-" if row.seconds is None else f"{row.seconds:.1f}s",
            )
        return table


async def watch_first_runs(board: RunBoard, console, interval: float = 1.0) -> None:
    """Show the first runs until every one has finished: a live table on a terminal, one line
    per change otherwise; then one summary line."""
    started = time.monotonic()
    if console.is_terminal:
        from rich.live import Live

        with Live(board.table(), console=console, refresh_per_second=4, transient=False) as live:
            while not board.settled:
                await _refresh_quietly(board)
                live.update(board.table())
                if not board.settled:
                    await asyncio.sleep(interval)
    else:
        while not board.settled:
            for row in await _refresh_quietly(board):
                counts = f"  ({row.counts()})" if row.done and row.counts() else ""
                console.print(f"  {row.key:<32} {row.state}{counts}", highlight=False)
            if not board.settled:
                await asyncio.sleep(interval)
    took = time.monotonic() - started
    console.print(
        f"First runs done in {took:.0f}s: {board.summary()}. "
        "`learn status` shows them again; the log has the details.",
        highlight=False,
    )


async def _refresh_quietly(board: RunBoard) -> list[RunRow]:
    """A refresh that outlives a Temporal hiccup (the view is informative, never fatal)."""
    try:
        return await board.refresh()
    except Exception:
        return []
