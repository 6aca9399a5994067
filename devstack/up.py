"""`learn up`: start the services and learnflow, show what a person needs, stop within bounds.

- Startup: DATA_DIR is checked and locked, a crashed run's leftovers are ended, then the
  services (system.ServiceStack) and the app (workers + gRPC) start; any failure is one line on
  the console (the details go to DATA_DIR/logs/learn-up.jsonl), never a traceback.
- Console: the addresses and what to try, then the first runs (console.watch_first_runs).
  Logs are JSON lines in DATA_DIR/logs/; `--verbose` also prints them.
- Stop: the first SIGINT/SIGTERM starts an orderly stop that a watchdog bounds (whatever it is
  waiting for, what is left is killed and the process exits before `STOP_DEADLINE_S`); a second
  one kills at once. The process ends with `os._exit`: activity threads that cannot be cancelled
  must not keep the interpreter (and so its children) alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import structlog

from devstack.console import RunBoard, protect_std_streams, watch_first_runs
from devstack.harness.children import StackError
from devstack.system import ServiceStack, demo_first_runs, start_app
from learnflow.settings import get_settings, reset_settings

log = structlog.get_logger(__name__)

# The bound is 10 s from the signal to the last child gone; the watchdog fires earlier
# so that killing and reaping fit inside it.
STOP_DEADLINE_S = 8.0


class Stopper:
    """SIGINT/SIGTERM handling for `learn up` (Python-level handlers: they run in the main
    thread even while the event loop waits, and asyncio.run's own handler is not used)."""

    def __init__(self, stack: ServiceStack, deadline_s: float = STOP_DEADLINE_S) -> None:
        self.stack = stack
        self.deadline_s = deadline_s
        self.signals = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._finished = threading.Event()

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def attach(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        self._loop, self._event = loop, event

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # No logging here: the handler may interrupt the main thread inside a write to the same
        # log file, and a buffered file refuses that re-entrant write. The thread logs instead.
        self.signals += 1
        if self.signals > 1:
            self.end_now(130, flush=False)
        name = signal.Signals(signum).name
        threading.Thread(
            target=self._watchdog, args=(name,), name="stop-watchdog", daemon=True
        ).start()
        if self._loop is not None and self._event is not None:
            self._loop.call_soon_threadsafe(self._event.set)
        else:
            raise KeyboardInterrupt  # still starting: abandon it; `run` stops what started

    def _watchdog(self, signal_name: str) -> None:
        log.info("up.stopping", signal=signal_name)
        if not self._finished.wait(self.deadline_s):
            log.error("up.stop_deadline", seconds=self.deadline_s)
            self.end_now(1)

    def end_now(self, code: int, flush: bool = True) -> NoReturn:
        """Kill what is left and exit. From a signal handler (`flush=False`) nothing is written:
        the main thread may be inside a write to the very file or stream."""
        self.stack.kill()
        if flush:
            _flush_logs()
        os._exit(code)

    def finished(self) -> None:
        self._finished.set()


def _core_logs_to_python() -> None:
    """The Temporal SDK's core (Rust) logs to stderr by default; forwarded, its warnings (e.g.
    a slow workflow task on a loaded machine) go where every other log line goes."""
    from temporalio.runtime import (
        LogForwardingConfig,
        LoggingConfig,
        Runtime,
        TelemetryConfig,
        TelemetryFilter,
    )

    forwarding = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
    filter_ = TelemetryFilter(core_level="WARN", other_level="ERROR")
    telemetry = TelemetryConfig(logging=LoggingConfig(filter=filter_, forwarding=forwarding))
    Runtime.set_default(Runtime(telemetry=telemetry), error_if_already_set=False)


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):  # a broken console must not stop the exit
            handler.flush()


def run(
    *,
    data_dir: Path,
    demo: bool,
    opensearch: bool,
    temporal_port: int,
    ui_port: int,
    webhook_port: int,
    trigger: bool,
    verbose: bool,
    processes: int | None = None,
) -> NoReturn:
    """The whole `learn up` command; never returns (see the module docstring)."""
    from rich.console import Console

    from learnflow.logging import configure_logging

    protect_std_streams()
    _core_logs_to_python()
    # learn up's own settings come from the environment only: the env file describes the stack
    # this command starts (for other commands) and is never read back as input.
    os.environ["LEARNFLOW_ENV_FILE"] = ""
    reset_settings()
    # soft_wrap: a line longer than the terminal (or than 80 columns on a pipe) stays one line
    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    configure_logging(json=False, console=verbose)  # until DATA_DIR/logs/ is known to be ours
    stack = ServiceStack(
        data_dir=data_dir.resolve(),
        demo=demo,
        temporal_port=temporal_port,
        ui_port=ui_port,
        webhook_port=webhook_port,
    )
    stopper = Stopper(stack)
    stopper.install()
    node = None
    code = 0
    log_file = stack.log_dir / "learn-up.jsonl"
    try:
        stack.claim()
        configure_logging(json=False, console=verbose, log_file=log_file)
        log.info("up.starting", data_dir=str(stack.data_dir), demo=demo, pid=os.getpid())
        console.print(f"Starting learnflow in {stack.data_dir} (logs: {stack.log_dir}/) …")
        if opensearch:
            from devstack.harness.opensearch import OpenSearchNode  # type: ignore[import-not-found]

            node = OpenSearchNode()
            stack.env["OPENSEARCH_URL"] = node.start()
            if node.proc is not None:
                stack.adopt("opensearch", node.proc)
            stack.env["KEYWORD_BACKEND"] = "opensearch"
        stack.start()
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        stopper.attach(loop, stop)
        # run_until_complete, not asyncio.run: its exit cancels and awaits every task with no
        # bound, and an activity thread that never returns would hold the stop for ever.
        loop.run_until_complete(run_up(stack, console, stop, trigger=trigger, processes=processes))
    except StackError as exc:
        console.print(f"error: {exc}", style="red", markup=False)
        code = 1
    except KeyboardInterrupt:
        console.print("Stopped while starting.")
        code = 130
    except Exception as exc:
        log.exception("up.failed")
        where = log_file if log_file.exists() else "the output above"
        console.print(f"error: {type(exc).__name__}: {exc} (details: {where})", markup=False)
        code = 1
    finally:
        log.info("up.stopping_services")
        stack.stop()
        if node is not None:
            node.stop()
        log.info("up.stopped", code=code)
        stopper.finished()
        _flush_logs()
        console.file.flush()
    os._exit(code)


async def _start_webhooks(stack: ServiceStack, started: dict[str, Any]) -> str:
    """The signed-webhook service in this process, when a secret is set (the demo makes one);
    returns what the banner says about it."""
    import uvicorn

    from webhook_service.app import app_from_env

    settings = get_settings()
    if not (settings.webhook_secret or settings.webhook_secrets):
        return "not started: set WEBHOOK_SECRET (or run `learn webhooks serve`)"
    try:
        asgi = app_from_env()
    except ValueError as exc:
        log.warning("up.webhooks_not_started", error=str(exc))
        return f"not started: {exc}"

    class EmbeddedServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # learn up's Stopper owns SIGINT/SIGTERM
            yield

    config = uvicorn.Config(
        asgi, host="127.0.0.1", port=stack.webhook_port, log_config=None, access_log=False
    )
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve())
    started["tasks"].append(task)
    deadline = asyncio.get_running_loop().time() + 10
    while not server.started and not task.done():
        if asyncio.get_running_loop().time() > deadline:
            return "not started: no answer within 10 s (see the log)"
        await asyncio.sleep(0.05)
    if task.done():
        return "not started: see the log"
    secret = "the WEBHOOK_SECRET in learnflow.env" if stack.demo else "WEBHOOK_SECRET"
    return f"http://127.0.0.1:{stack.webhook_port}/api/v1/webhooks/… (signed with {secret})"


def _processes_note(app) -> str:
    n = getattr(app.grpc, "processes", 1)
    return f" ({n} server processes)" if n > 1 else ""


def print_banner(console, stack: ServiceStack, app, schedules: int, report, webhooks: str) -> None:
    assert stack.temporal is not None
    rows = [
        ("Temporal UI", stack.temporal.ui_url),
        ("Temporal gRPC", stack.temporal.address),
        ("Search gRPC", f"{app.grpc_address}{_processes_note(app)}"),
        ("Webhooks", webhooks),
        (
            "Schedules",
            f"{schedules} ({len(report.created)} created, {len(report.updated)} updated)",
        ),
        ("Logs", f"{stack.log_dir}/learn-up.jsonl (JSON lines; --verbose prints them here)"),
    ]
    console.print("learnflow is up.", style="bold")
    for name, value in rows:
        console.print(f"  {name:<14} {value}", markup=False)
    data_dir_opt = "" if stack.other_commands_hint() is None else f" --data-dir {stack.data_dir}"
    console.print("Try:")
    console.print('  learn search "differential equations"', markup=False)
    console.print(f"  learn status{data_dir_opt}", markup=False)
    console.print(
        f"  grpcurl -plaintext {app.grpc_address} list learn.search.v1.SearchService",
        markup=False,
    )
    if hint := stack.other_commands_hint():
        console.print(hint, markup=False)
    console.print("Ctrl-C stops every process learn up started.")


async def run_up(
    stack: ServiceStack,
    console,
    stop: asyncio.Event,
    trigger: bool = True,
    processes: int | None = None,
) -> None:
    """The app, the schedules, a first run of every source, until `stop` is set: a stop while
    still starting cancels the start (no step of it waits for the stop to be noticed)."""
    from learnflow.stores import reset_stores

    started: dict[str, Any] = {}
    main = asyncio.create_task(_serve(stack, console, trigger, started, processes))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({main, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if main.done():
            main.result()  # a failed start raises here
            await stopping
    finally:
        log.info("up.stopping_app")
        tasks = [main, stopping, *started.get("tasks", [])]
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=0.5)  # the live view ends before the next line
        console.print("Stopping…")
        if (app := started.get("app")) is not None:
            try:
                await asyncio.wait_for(app.stop(grace=1.0), timeout=3.0)
            except TimeoutError:
                log.warning("up.workers_stop_timeout", seconds=3.0)
        try:
            await asyncio.wait_for(reset_stores(), timeout=1.5)
        except TimeoutError:
            log.warning("up.stores_close_timeout", seconds=1.5)


async def _serve(
    stack: ServiceStack,
    console,
    trigger: bool,
    started: dict[str, Any],
    processes: int | None = None,
) -> None:
    from learnflow.schedules import reconcile, wanted_schedules
    from search_service.processes import process_count
    from sources import all_schedules
    from worker import queue_registry

    since = datetime.now(UTC) - timedelta(seconds=2)
    started["tasks"] = []
    settings = get_settings()
    app = started["app"] = await start_app(
        settings.grpc_address,
        graceful_shutdown=timedelta(seconds=2),
        processes=process_count(settings, processes),
    )
    registered = {wf.__name__ for wfs, _ in queue_registry().values() for wf in wfs}
    entries = wanted_schedules(registered, all_schedules())
    report = await reconcile(app.client, entries)
    keys: list[str] = []
    if stack.demo:
        demo_tasks, keys = await demo_first_runs(app.client, entries, trigger)
        started["tasks"].extend(demo_tasks)
    elif trigger:
        for entry in entries:
            if not entry.paused:
                await app.client.get_schedule_handle(entry.schedule_id).trigger()
                keys.append(entry.schedule_id)
    webhooks = await _start_webhooks(stack, started)
    print_banner(console, stack, app, len(entries), report, webhooks)
    if keys:
        board = RunBoard(app.client, since)
        board.expect(keys)
        console.print("First runs:")
        await watch_first_runs(board, console)
