"""grpcio's fork handlers stay off in every process that runs the embedded Tika.

The native Tika forks `tesseract` probes while holding the GIL. With grpcio's fork support on,
the child restarts gRPC's threads in its atfork handlers and can deadlock before its exec; the
parent then waits on the child's pipe for ever (a CI run hung like this in a Canvas archive
walk). A forked child that runs no handlers has exactly one thread: that is what is checked,
with a gRPC channel open so that gRPC's threads exist in the parent.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from learnflow import REPO_ROOT

FORK_PROBE = """
import os, grpc
channel = grpc.insecure_channel("127.0.0.1:9")
pid = os.fork()
if pid == 0:
    os.write(1, str(len(os.listdir("/proc/self/task"))).encode())
    os._exit(0)
os.waitpid(pid, 0)
"""


def _child_threads(first_import: str, env: dict[str, str]) -> int:
    out = subprocess.run(
        [sys.executable, "-c", f"import {first_import}\n{FORK_PROBE}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(out.stdout.strip())


@pytest.mark.parametrize("entry", ["worker", "learn_cli.cli", "learnflow"])
def test_entry_points_turn_grpc_fork_handlers_off(entry):
    env = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    assert _child_threads(entry, env) == 1


def test_the_probe_sees_grpc_threads_when_fork_support_is_on():
    """The check above can fail: with the handlers on, the child restarts gRPC's threads."""
    env = {**os.environ, "GRPC_ENABLE_FORK_SUPPORT": "true", "PYTHONPATH": str(REPO_ROOT)}
    assert _child_threads("os", env) > 1


def test_the_test_process_itself_runs_without_fork_handlers():
    import grpc  # noqa: F401 - loaded, as in every test session that talks to the search service

    assert os.environ.get("GRPC_ENABLE_FORK_SUPPORT") == "false"
    from grpc._cython import cygrpc

    assert not cygrpc.is_fork_support_enabled()
