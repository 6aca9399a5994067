"""Start a real Apache Tika 3.3.1 REST server on 127.0.0.1 from Maven Central jars.

What Maven Central answers here (recorded 2026-11-25):

* ``org.apache.tika:tika-server-standard:3.3.1`` -> ``Could not find artifact
  org.apache.tika:tika-server-standard:jar:3.3.1 in central`` (neither pom nor jar is served);
* ``org.apache.tika:tika-server-core:3.3.1`` -> ``Could not find artifact
  org.apache.tika:tika-server-core:jar:3.3.1 in central``;
* ``org.apache.tika:tika-parsers-standard-package:3.3.1`` + ``org.apache.tika:tika-core:3.3.1``
  resolve (88 jars, 58 MB; ``com.github.junrar:junrar`` excluded: not an open-source licence).

So the server is the real Tika (``AutoDetectParser``/``RecursiveParserWrapper`` from those jars)
behind a ~250-line JDK ``com.sun.net.httpserver`` front end, ``tools/tika-server/
TikaRestServer.java``, compiled here with ``javac`` into the cache. It serves the tika-server
endpoints the Python ``tika`` client and learnflow use, with the same paths and JSON shape:
``GET /tika``, ``GET /version``, ``PUT /tika``, ``PUT /rmeta[/text|xml|html|ignore]``,
``PUT /meta``, ``PUT /detect/stream``. OCR (tesseract) is off by default for determinism and
speed; ``TikaServer(ocr=True)`` or the request header ``X-Tika-OCRskipOcr: false`` turns it on
(needs Debian ``tesseract-ocr``).

If a real ``tika-server-standard`` jar is at hand, point ``LEARNFLOW_TIKA_SERVER_JAR`` at it and
the harness runs ``java -Xmx512m -jar <jar> -h 127.0.0.1 -p <port>`` instead (3.x main class
``org.apache.tika.server.core.TikaServerCli``; note it forks a child JVM by default).

The Python client: set ``TIKA_CLIENT_ONLY=1`` and ``TIKA_SERVER_ENDPOINT=<url>`` in the
environment BEFORE ``import tika`` (the package attribute ``tika.TikaClientOnly`` has no effect;
the module attribute ``tika.tika.TikaClientOnly`` does). :func:`tika_client_env` returns that
dict; :func:`configure_tika_client` applies it to ``os.environ`` and patches an already
imported ``tika.tika`` module.

API::

    srv = TikaServer(); url = srv.start(); ...; srv.stop()
    with running_tika() as url: ...
    tika_client_env(url) -> dict[str, str]
    configure_tika_client(url) -> None
    ensure_tika() -> TikaInstall   # fetch + compile only
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devstack.harness import maven
from devstack.harness.process import ServiceProcess, free_port

TIKA_VERSION = "3.3.1"
DEFAULT_HEAP = "512m"
EXCLUDE = ("com.github.junrar:junrar",)
SERVER_SOURCE = (
    Path(__file__).resolve().parents[2] / "tools" / "tika-server" / "TikaRestServer.java"
)
MAIN_CLASS = "TikaRestServer"
_READY = ".learnflow-ready.json"


class TikaStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class TikaInstall:
    lib_dir: Path
    classes_dir: Path
    java_home: Path

    @property
    def classpath(self) -> str:
        return f"{self.classes_dir}{os.pathsep}{self.lib_dir}/*"


def _tika_java_home() -> Path:
    return maven.find_java_home(
        11, None, env_vars=("LEARNFLOW_TIKA_JAVA_HOME", "JAVA_HOME"), require="javac"
    )


def ensure_tika(version: str = TIKA_VERSION) -> TikaInstall:
    """Fetch the Tika jars (once) and compile the REST front end (once per source change)."""
    if version != TIKA_VERSION:
        raise ValueError(f"only Tika {TIKA_VERSION} is wired up")
    base = maven.cache_dir() / "tika" / version
    lib = base / "lib"
    java_home = _tika_java_home()
    if not SERVER_SOURCE.is_file():
        raise TikaStartError(f"missing {SERVER_SOURCE}")
    src_hash = hashlib.sha256(SERVER_SOURCE.read_bytes()).hexdigest()[:12]
    classes = base / f"classes-{src_hash}-java{maven.java_major(java_home)}"
    install = TikaInstall(lib, classes, java_home)
    if (lib / _READY).is_file() and (classes / _READY).is_file():
        return install
    base.mkdir(parents=True, exist_ok=True)
    with maven.cache_lock(f"tika-{version}"):
        if not (lib / _READY).is_file():
            t0 = time.monotonic()
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=base))
            try:
                deps = [
                    maven.Dependency("org.apache.tika", "tika-core", version, exclusions=EXCLUDE),
                    maven.Dependency(
                        "org.apache.tika",
                        "tika-parsers-standard-package",
                        version,
                        exclusions=EXCLUDE,
                    ),
                ]
                jars = maven.copy_dependencies(
                    deps, staging / "lib", work_dir=staging / "pom", name="tika-server-deps"
                )
                for jar in jars:  # belt and braces: never ship junrar
                    if jar.name.startswith("junrar-"):
                        jar.unlink()
                (staging / "lib" / _READY).write_text(
                    json.dumps(
                        {
                            "artifacts": [d.coords for d in deps],
                            "excluded": list(EXCLUDE),
                            "jars": len(jars),
                            "bytes": maven.dir_size(staging / "lib"),
                            "fetch_seconds": round(time.monotonic() - t0, 2),
                        },
                        indent=2,
                    )
                )
                if lib.exists():
                    shutil.rmtree(lib)
                (staging / "lib").rename(lib)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        if not (classes / _READY).is_file():
            tmp_classes = Path(tempfile.mkdtemp(prefix=".classes-", dir=base))
            try:
                proc = subprocess.run(
                    [
                        str(java_home / "bin" / "javac"),
                        "-nowarn",
                        "-d",
                        str(tmp_classes),
                        "-cp",
                        f"{lib}/*",
                        str(SERVER_SOURCE),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
                if proc.returncode != 0:
                    raise TikaStartError(f"javac failed:\n{proc.stdout}{proc.stderr}")
                (tmp_classes / _READY).write_text(src_hash)
                if classes.exists():
                    shutil.rmtree(classes)
                tmp_classes.rename(classes)
            finally:
                shutil.rmtree(tmp_classes, ignore_errors=True)
    return install


def tika_client_env(url: str) -> dict[str, str]:
    """Env vars the Python ``tika`` client needs (set them before ``import tika``)."""
    return {"TIKA_CLIENT_ONLY": "1", "TIKA_SERVER_ENDPOINT": url.rstrip("/")}


def configure_tika_client(url: str) -> None:
    """Point the Python ``tika`` client at ``url`` in client-only mode (no jar download).

    Sets the env vars and, if ``tika.tika`` is already imported, its module attributes too
    (it reads the env only at import time).
    """
    env = tika_client_env(url)
    os.environ.update(env)
    mod = sys.modules.get("tika.tika")
    if mod is not None:
        mod.TikaClientOnly = True  # type: ignore[attr-defined]
        mod.ServerEndpoint = env["TIKA_SERVER_ENDPOINT"]  # type: ignore[attr-defined]


class TikaServer(ServiceProcess):
    """One throwaway Tika REST server on 127.0.0.1 (free port, 512 MB heap)."""

    name = "Tika"
    start_error = TikaStartError

    def __init__(
        self,
        *,
        heap: str = DEFAULT_HEAP,
        ocr: bool = False,
        startup_timeout: float = 90.0,
        keep_dir: bool = False,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout, keep_dir=keep_dir)
        self.heap = heap
        self.ocr = ocr

    def _command(self, port: int, run: Path) -> list[str]:
        jvm = [
            f"-Xmx{self.heap}",
            f"-Djava.io.tmpdir={run / 'tmp'}",
            "-Djava.awt.headless=true",
            "-Dslf4j.internal.verbosity=ERROR",
            "-Dlog4j2.loggerContextFactory=org.apache.logging.log4j.simple.SimpleLoggerContextFactory",
        ]
        jar = os.environ.get("LEARNFLOW_TIKA_SERVER_JAR")
        if jar:
            java = maven.find_java_home(
                11, None, env_vars=("LEARNFLOW_TIKA_JAVA_HOME", "JAVA_HOME")
            )
            return [
                str(java / "bin" / "java"),
                *jvm,
                "-jar",
                jar,
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ]
        inst = ensure_tika()
        cmd = [
            str(inst.java_home / "bin" / "java"),
            *jvm,
            "-cp",
            inst.classpath,
            MAIN_CLASS,
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ]
        if self.ocr:
            cmd.append("--ocr")
        return cmd

    def start(self) -> str:
        if self.proc is not None:
            raise RuntimeError("already started")
        t0 = time.monotonic()
        run = Path(tempfile.mkdtemp(prefix="learnflow-tika-"))
        (run / "tmp").mkdir()
        self.run_dir = run
        port = free_port()
        cmd = self._command(port, run)
        setpriv = shutil.which("setpriv")
        prefix = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
        self.command = prefix + cmd
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._launch(cwd=run)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self.url

    def _wait_ready(self) -> None:
        self._wait_until(
            lambda: self.greeting(timeout=2.0) is not None, "no answer to GET /tika", 0.2
        )

    def greeting(self, timeout: float = 5.0) -> str | None:
        """The text of ``GET /tika`` ("This is Tika Server ..."), or None."""
        if not self.url:
            return None
        try:
            with urllib.request.urlopen(  # noqa: S310 - fixed http://127.0.0.1 URL
                f"{self.url}/tika", timeout=timeout
            ) as resp:
                return resp.read().decode() if resp.status == 200 else None
        except (urllib.error.URLError, OSError):
            return None

    def client_env(self) -> dict[str, str]:
        if not self.url:
            raise RuntimeError("not started")
        return tika_client_env(self.url)


@contextlib.contextmanager
def running_tika(**kwargs: object) -> Iterator[str]:
    """``with running_tika() as url:`` start a throwaway Tika server, stop it afterwards."""
    srv = TikaServer(**kwargs)  # type: ignore[arg-type]
    try:
        yield srv.start()
    finally:
        srv.stop()


def main() -> None:  # pragma: no cover - manual use: python -m devstack.harness.tika
    srv = TikaServer()
    url = srv.start()
    print(f"Tika {TIKA_VERSION} at {url} (started in {srv.start_seconds:.1f}s)")
    print("command:", " ".join(srv.command))
    print("client env:", " ".join(f"{k}={v}" for k, v in srv.client_env().items()))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
