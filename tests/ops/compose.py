"""docker-compose.yml read the way compose reads it, and its learnflow services run as processes.

Nothing here restates the file: commands, environments, volumes, health checks and the start
order (depends_on) come from it. What the harness provides instead of containers is said by
`Stand-ins`: the address that answers for each infrastructure service's `host:port`, a local
directory for each container path, a free port for each port a service binds (every container
has its own network namespace; these processes share one), and the compose variables
(`${WEBHOOK_SECRET:-}` ...) an operator would export.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devstack.harness import reaper
from devstack.harness.process import free_port
from learnflow import REPO_ROOT
from tests.helpers.polling import eventually_sync

COMPOSE = REPO_ROOT / "docker-compose.yml"
_VAR = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)


def load(path: Path = COMPOSE) -> dict[str, Any]:
    """The file as compose sees it before interpolation (anchors and `<<` merges resolved)."""
    return yaml.safe_load(path.read_text())


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """Compose's variable substitution: `${X}`, `${X:-default}`, `${X-default}`, `$X`, `$$`."""
    if isinstance(value, list):
        return [interpolate(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        got = variables.get(name)
        if m.group(2) == ":-":
            return got if got else m.group(3)
        if m.group(2) == "-":
            return got if got is not None else m.group(3)
        return got or ""

    return _VAR.sub(sub, value)


def depends_on(svc: dict[str, Any]) -> list[str]:
    deps = svc.get("depends_on") or []
    return list(deps) if isinstance(deps, dict | list) else []


@dataclass
class StandIns:
    """How the compose network maps onto this machine."""

    hosts: dict[str, str]  # compose `service:port` -> local `host:port`
    variables: dict[str, str]  # what an operator exports for the file's ${...}
    scratch: Path  # local directories for container paths and named volumes
    extra_env: dict[str, str] = field(default_factory=dict)  # test-only, said where it is set
    ports: dict[tuple[str, int], int] = field(default_factory=dict)

    def port(self, service: str, container_port: int) -> int:
        return self.ports.setdefault((service, container_port), free_port())

    def local_path(self, service: str, svc: dict[str, Any], path: str) -> str:
        """A container path: its volume's source (a host path beside the compose file, or a named
        volume's directory), else a per-service directory standing in for the image's disk."""
        for mount in svc.get("volumes") or []:
            src, dst = str(mount).split(":")[:2]
            if path == dst or path.startswith(dst.rstrip("/") + "/"):
                rest = path[len(dst) :].lstrip("/")
                if src.startswith((".", "/")):
                    base = (COMPOSE.parent / src).resolve()
                else:
                    base = self.scratch / "volumes" / src
                    base.mkdir(parents=True, exist_ok=True)
                return str(base / rest) if rest else str(base)
        local = self.scratch / "containers" / service / path.lstrip("/")
        local.mkdir(parents=True, exist_ok=True)
        return str(local)

    def localise(self, service: str, svc: dict[str, Any], text: str, probe: bool = False) -> str:
        """Container hosts, bound ports and paths in one value or argument, made local. A
        service binds `0.0.0.0:N`; its health check (`probe`) reaches it at `127.0.0.1:N`."""
        bound = r"(?:0\.0\.0\.0|127\.0\.0\.1)" if probe else r"0\.0\.0\.0"
        # binds first: the hosts' local addresses below are 127.0.0.1 too
        text = re.sub(
            rf"{bound}:(\d+)",
            lambda m: f"127.0.0.1:{self.port(service, int(m.group(1)))}",
            text,
        )
        for remote, local in self.hosts.items():
            text = re.sub(rf"(?<![\w.-]){re.escape(remote)}(?![\w])", local, text)
        if text.startswith("/") and not text.startswith("//"):
            text = self.local_path(service, svc, text)
        return text

    def environment(self, service: str, svc: dict[str, Any]) -> dict[str, str]:
        env = interpolate(svc.get("environment") or {}, self.variables)
        if isinstance(env, list):  # the `- KEY=value` form
            env = dict(item.split("=", 1) for item in env)
        return {k: self.localise(service, svc, str(v)) for k, v in env.items()}

    def command(self, service: str, svc: dict[str, Any]) -> list[str]:
        """The service's command; `python` is this interpreter, other programs come from its
        bin directory (the image's PATH); `--host 0.0.0.0` / `--port N` bind locally."""
        argv = [self.localise(service, svc, a) for a in interpolate(svc["command"], self.variables)]
        for i, arg in enumerate(argv[:-1]):
            if arg == "--host" and argv[i + 1] == "0.0.0.0":
                argv[i + 1] = "127.0.0.1"
            if arg == "--port" and argv[i + 1].isdigit():
                argv[i + 1] = str(self.port(service, int(argv[i + 1])))
        return [program(argv[0]), *argv[1:]]


def program(name: str) -> str:
    if name == "python":
        return sys.executable
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed beside {sys.executable} (make install)"
    return found


class ServiceRun:
    """One compose service as a process in its own process group; its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,  # the image's WORKDIR holds the repository
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        reaper.watch(self.proc.pid)

    def log(self, lines: int = 80) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"---- {self.name}: {' '.join(self.argv)}\n" + "\n".join(text[-lines:])

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout}s\n{self.log()}")

    def stop(self, grace: float) -> int | None:
        """SIGTERM to the group (compose's stop), SIGKILL after `grace`; the exit code, or None
        when it had to be killed."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            return None


def healthy(stand_ins: StandIns, name: str, svc: dict[str, Any], env: dict[str, str]) -> bool:
    """The service's own compose health check, run here with local ports."""
    test = svc["healthcheck"]["test"]
    assert test[0] == "CMD", f"{name}: health check form {test[0]} is not run here"
    argv = [stand_ins.localise(name, svc, a, probe=True) for a in test[1:]]
    argv[0] = program(argv[0])
    done = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, timeout=10)
    return done.returncode == 0


def wait_healthy(
    stand_ins: StandIns, runs: dict[str, ServiceRun], svcs: dict[str, Any], envs, within: float
) -> None:
    """Poll every service's health check until all pass; a service that exits fails at once."""
    pending = set(runs)

    def all_healthy() -> bool:
        for name in sorted(pending):
            run = runs[name]
            assert run.proc.poll() is None, f"{name} exited with {run.proc.returncode}\n{run.log()}"
            if healthy(stand_ins, name, svcs[name], envs[name]):
                pending.discard(name)
        return not pending

    eventually_sync(
        all_healthy,
        lambda: "every service healthy:\n" + "\n".join(runs[n].log() for n in pending),
        within,
        every=0.3,
    )


def start_order(services: dict[str, Any], names: set[str]) -> list[str]:
    """`names` in depends_on order (dependencies on other services are the harness's)."""
    out: list[str] = []

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        assert name not in path, f"depends_on cycle: {path}"
        if name in out:
            return
        for dep in depends_on(services[name]):
            if dep in names:
                visit(dep, (*path, name))
        out.append(name)

    for name in sorted(names):
        visit(name)
    return out


def grace_seconds(svc: dict[str, Any], default: float = 10.0) -> float:
    """compose's stop_grace_period (`45s`, `1m30s`); 10 s when unset, as compose."""
    value = str(svc.get("stop_grace_period") or "")
    parts = re.findall(r"(\d+)([hms])", value)
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts) or default
