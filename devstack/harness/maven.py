"""Tiny Maven helper shared by the OpenSearch and Tika harnesses.

Everything is fetched from Maven Central with the system ``mvn`` into a cache
folder OUTSIDE the repository:

* ``$LEARNFLOW_CACHE_DIR`` if set, else ``~/.cache/learnflow``;
* the Maven local repository is ``<cache>/maven/repo`` (not ``~/.m2``), so the
  cache is self-contained and can be wiped with one ``rm -rf``;
* ``LEARNFLOW_MAVEN_OFFLINE=1`` adds ``-o`` (offline) to every call.

Callers keep their own "ready" marker files, so when an artifact is already
unpacked/copied no ``mvn`` process is started at all (a warm start costs
nothing). Every call runs with ``-q -B`` (quiet, batch), a timeout, and on
failure raises :class:`MavenError` naming the artifact that was asked for and
the ``[ERROR]`` lines Maven answered with.

Concurrent fetches (two pytest processes, two workers) are serialised with an
``fcntl`` lock file in the cache dir: see :func:`cache_lock`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
DEFAULT_TIMEOUT = 900.0


class MavenError(RuntimeError):
    """Maven could not fetch ``artifact``; ``answer`` holds what it printed."""

    def __init__(self, artifact: str, answer: str, returncode: int | None = None):
        self.artifact = artifact
        self.answer = answer
        self.returncode = returncode
        super().__init__(
            f"Maven refused artifact {artifact!r} (exit {returncode}).\n"
            f"Maven answered:\n{answer.strip() or '<no output>'}"
        )


def cache_dir() -> Path:
    """Root of the learnflow download cache (outside the repo)."""
    env = os.environ.get("LEARNFLOW_CACHE_DIR")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "learnflow"
    root.mkdir(parents=True, exist_ok=True)
    return root


def local_repo() -> Path:
    """The Maven local repository used by the harness (``<cache>/maven/repo``)."""
    repo = cache_dir() / "maven" / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    return repo


def mvn_executable() -> str:
    exe = os.environ.get("LEARNFLOW_MVN") or shutil.which("mvn")
    if not exe:
        raise MavenError("<mvn itself>", "`mvn` is not on PATH (apt-get install maven)")
    return exe


@contextlib.contextmanager
def cache_lock(name: str) -> Iterator[None]:
    """Exclusive inter-process lock ``<cache>/locks/<name>.lock``."""
    lock_dir = cache_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _error_lines(output: str) -> str:
    lines = [ln for ln in output.splitlines() if "ERROR" in ln or "Could not" in ln]
    # Maven's help boilerplate adds nothing.
    lines = [
        ln
        for ln in lines
        if "-e switch" not in ln and "-X switch" not in ln and "http://cwiki" not in ln
    ]
    return "\n".join(lines) if lines else output[-4000:]


def run_mvn(
    args: Sequence[str],
    *,
    artifact: str,
    cwd: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``mvn -q -B -Dmaven.repo.local=<cache> <args>``; raise MavenError on failure.

    ``artifact`` is the coordinate string used in the error message.
    """
    cmd = [mvn_executable(), "-q", "-B", f"-Dmaven.repo.local={local_repo()}"]
    if os.environ.get("LEARNFLOW_MAVEN_OFFLINE", "").lower() in {"1", "true", "yes"}:
        cmd.append("-o")
    cmd += list(args)
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or "") + (exc.stderr or "") if isinstance(exc.stdout, str) else ""
        raise MavenError(artifact, f"timed out after {timeout:.0f}s\n{out[-4000:]}") from exc
    if proc.returncode != 0:
        raise MavenError(artifact, _error_lines(proc.stdout + proc.stderr), proc.returncode)
    return proc


def fetch_artifact(coords: str, *, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Fetch one artifact (``group:artifact:version[:type[:classifier]]``, no dependencies)
    into the cache's local repository with ``dependency:get`` and return its path there.

    No ``mvn`` process is started when the file is already in the local repository.
    """
    parts = coords.split(":")
    if len(parts) < 3:
        raise ValueError(f"bad Maven coordinates: {coords!r}")
    group, art, version = parts[:3]
    typ = parts[3] if len(parts) > 3 else "jar"
    classifier = parts[4] if len(parts) > 4 else ""
    name = f"{art}-{version}{'-' + classifier if classifier else ''}.{typ}"
    target = local_repo().joinpath(*group.split("."), art, version, name)
    if target.is_file():
        return target
    run_mvn(
        [
            f"{DEPENDENCY_PLUGIN}:get",
            f"-Dartifact={group}:{art}:{version}:{typ}{':' + classifier if classifier else ''}",
            "-Dtransitive=false",
        ],
        artifact=coords,
        cwd=local_repo(),
        timeout=timeout,
    )
    if not target.is_file():
        raise MavenError(coords, f"mvn exited 0 but {target} is missing")
    return target


@dataclass(frozen=True)
class Dependency:
    """One ``<dependency>`` of a throwaway pom."""

    group: str
    artifact: str
    version: str
    type: str = "jar"
    # each exclusion is "group:artifact"; ``*`` wildcards are allowed by Maven
    exclusions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def coords(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    def to_xml(self) -> str:
        excl = "".join(
            f"<exclusion><groupId>{escape(e.split(':')[0])}</groupId>"
            f"<artifactId>{escape(e.split(':')[1])}</artifactId></exclusion>"
            for e in self.exclusions
        )
        return (
            f"<dependency><groupId>{escape(self.group)}</groupId>"
            f"<artifactId>{escape(self.artifact)}</artifactId>"
            f"<version>{escape(self.version)}</version>"
            f"<type>{escape(self.type)}</type>"
            + (f"<exclusions>{excl}</exclusions>" if excl else "")
            + "</dependency>"
        )


def write_pom(path: Path, dependencies: Sequence[Dependency], *, name: str = "throwaway") -> Path:
    """Write a minimal pom whose only purpose is to list ``dependencies``."""
    deps = "\n    ".join(d.to_xml() for d in dependencies)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.devstack.harness</groupId>
  <artifactId>{escape(name)}</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    {deps}
  </dependencies>
</project>
"""
    )
    return path


def copy_dependencies(
    dependencies: Sequence[Dependency],
    dest_dir: Path,
    *,
    work_dir: Path,
    name: str = "throwaway",
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Path]:
    """Resolve ``dependencies`` (transitively, runtime scope) with a throwaway pom in
    ``work_dir`` and copy all jars into ``dest_dir``. Returns the jar paths."""
    pom = write_pom(work_dir / "pom.xml", dependencies, name=name)
    dest_dir.mkdir(parents=True, exist_ok=True)
    run_mvn(
        [
            "-f",
            str(pom),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={dest_dir}",
            "-DincludeScope=runtime",
            "-Dmdep.useRepositoryLayout=false",
        ],
        artifact=", ".join(d.coords for d in dependencies),
        cwd=work_dir,
        timeout=timeout,
    )
    return sorted(dest_dir.glob("*.jar"))


def java_major(java_home: Path) -> int | None:
    """Major version of the JDK at ``java_home`` (its ``release`` file, else ``java -version``)."""
    release = java_home / "release"
    text = ""
    if release.is_file():
        text = release.read_text(errors="replace")
        m = re.search(r'^JAVA_VERSION="([^"]+)"', text, re.M)
        text = m.group(1) if m else ""
    if not text and (java_home / "bin" / "java").is_file():
        proc = subprocess.run(
            [str(java_home / "bin" / "java"), "-version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        m = re.search(r'version "([^"]+)"', proc.stderr)
        text = m.group(1) if m else ""
    if not text:
        return None
    first = text.split(".")[0]
    if first == "1" and "." in text:  # 1.8 style
        first = text.split(".")[1]
    return int(first) if first.isdigit() else None


def find_java_home(
    min_major: int = 11,
    max_major: int | None = None,
    env_vars: Sequence[str] = ("JAVA_HOME",),
    require: str = "java",
) -> Path:
    """Pick a JDK home whose major version is within [min_major, max_major].

    Looks, in order, at the env vars named in ``env_vars``, the ``java`` on PATH, then every
    folder under ``/usr/lib/jvm``. (OpenSearch 2.19 needs the SecurityManager, which Java 24+
    removed, so it must NOT be run on the Temurin 25 JDK even if JAVA_HOME points there.)
    ``require`` names a tool that must be in ``<home>/bin`` (e.g. ``javac``).
    """
    candidates: list[Path] = []
    for var in env_vars:
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent.parent)
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates += sorted(p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink())
    seen: list[str] = []
    for home in candidates:
        if not (home / "bin" / "java").is_file() or not (home / "bin" / require).is_file():
            continue
        major = java_major(home)
        seen.append(f"{home} (Java {major})")
        if major is not None and major >= min_major and (max_major is None or major <= max_major):
            return home
    raise RuntimeError(
        f"no Java {min_major}..{max_major or ''} found; looked at: {', '.join(seen) or 'nothing'}"
        " (apt-get install openjdk-17-jdk-headless)"
    )


def dir_size(path: Path) -> int:
    """Total bytes of regular files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start
