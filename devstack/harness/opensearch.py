"""Start a real single-node OpenSearch 2.19.6 on 127.0.0.1 from Maven Central artifacts.

Route taken (a): the distribution zip
``org.opensearch.distribution.integ-test-zip:opensearch:2.19.6:zip`` (56 MB) is fetched with
``mvn dependency:get`` into ``<cache>/maven/repo`` (see :mod:`devstack.harness.maven`; the cache is
``$LEARNFLOW_CACHE_DIR`` or ``~/.cache/learnflow``), unpacked into
``<cache>/opensearch/2.19.6/opensearch-2.19.6`` and started with its own ``bin/opensearch``.

The integ-test zip ships only the ``transport-netty4`` module and no plugins (so no security
plugin: ``plugins.security.disabled`` is NOT passed, it would be an unknown setting). The modules
MIT Learn's mappings and queries need are added from their Maven jars, each into
``modules/<name>/`` with the jar, its runtime dependencies (``org.opensearch:opensearch`` itself
excluded: it is in ``lib/``) and a ``plugin-descriptor.properties`` written here, exactly like
the full distribution lays them out:

==================  ==========================================  ==================================
module              Maven artifact (2.19.6)                     what MIT Learn uses it for
==================  ==========================================  ==================================
lang-painless       org.opensearch.plugin:lang-painless         ``script_score`` (+ antlr4, asm,
                    (+ opensearch-scripting-painless-spi)       needs plugin-security.policy)
analysis-common     org.opensearch.plugin:analysis-common       synonym_graph, stemmer, stop,
                    (extends lang-painless)                     keyword_marker, shingle
parent-join         org.opensearch.plugin:parent-join-client    join field, ``has_child``
mapper-extras       org.opensearch.plugin:mapper-extras-client  ``scaled_float`` (run prices)
reindex             org.opensearch.plugin:reindex-client        ``_update_by_query`` (featured
                    (+ rest client, httpclient; policy)         rank), ``_reindex``
percolator          org.opensearch.plugin:percolator-client     percolator index (subscriptions)
==================  ==========================================  ==================================

The ``<artifact>:2.19.6:zip`` module zips are NOT on Maven Central (``Could not find artifact
org.opensearch.plugin:analysis-common:zip:2.19.6``), hence the assembly from jars.

Route (b), kept as the fallback, not implemented: an embedded node assembled from jars
(``org.opensearch:opensearch`` + the plugin jars above + ``transport-netty4-client``) and a tiny
Java launcher (``tools/opensearch-launcher/``, compiled with javac) that builds a ``Node`` with
``MockNode``-style classpath plugins. Route (a) resolves, runs the real bootstrap (security
manager, jar-hell check, module class loaders) and is therefore preferred.

Running as root: OpenSearch refuses (``can not run opensearch as root``). When euid is 0 the
harness runs it as the unprivileged user ``$LEARNFLOW_OPENSEARCH_USER`` (default ``learnflow``),
creating it with ``useradd --system`` if missing, via ``setpriv --reuid --regid --clear-groups``;
because ``/root`` is mode 700 the distribution is hard-linked (or copied) into the node's temp
dir, which is chowned to that user. Java: OpenSearch 2.19 needs Java 11..21 (the SecurityManager
is gone in 24+), so a Java 17 is picked even if ``JAVA_HOME`` points at Temurin 25
(override: ``LEARNFLOW_OPENSEARCH_JAVA_HOME``).

Not installed: the non-module plugins neural-search (``hybrid`` query,
``hybrid_search_pipeline``) and k-NN (``knn_vector``; ``org.opensearch.plugin:opensearch-knn``
is served only at 2.19.1.0, needs native libraries, untried). So MIT Learn's ``combined_hybrid``
index cannot be created on this node; vectors live in Qdrant.

Everything binds 127.0.0.1 on free ports; heap is 512 MB (``-Xms512m -Xmx512m``); data, logs,
config and tmp live in a fresh temp dir that is deleted on stop.

API::

    node = OpenSearchNode(); url = node.start(); ...; node.stop()
    with running_opensearch() as url: ...
    ensure_distribution() -> Path   # fetch + assemble only
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devstack.harness import maven
from devstack.harness.process import ServiceProcess, free_port

OPENSEARCH_VERSION = "2.19.6"
DIST_COORDS = f"org.opensearch.distribution.integ-test-zip:opensearch:{OPENSEARCH_VERSION}:zip"
DEFAULT_HEAP = "512m"
DEFAULT_USER = "learnflow"
_READY = ".learnflow-ready.json"

_PAINLESS_POLICY = """grant {
  // needed to generate runtime classes
  permission java.lang.RuntimePermission "createClassLoader";
  // needed to find the classloader to load allowlisted classes from
  permission java.lang.RuntimePermission "getClassLoader";
};
"""

_REINDEX_POLICY = """grant {
  // reindex from remote opens socket connections using the rest client
  permission java.net.SocketPermission "*", "connect";
};

grant codeBase "${codebase.opensearch-rest-client}" {
  // rest client uses system properties which gets the default proxy
  permission java.net.NetPermission "getProxySelector";
};

grant codeBase "${codebase.httpasyncclient}" {
  // rest client uses system properties which gets the default proxy
  permission java.net.NetPermission "getProxySelector";
};
"""


@dataclass(frozen=True)
class ModuleSpec:
    name: str
    artifact: str
    classname: str
    description: str
    extended: tuple[str, ...] = ()
    policy: str | None = None


EXTRA_MODULES: tuple[ModuleSpec, ...] = (
    ModuleSpec(
        "lang-painless",
        "lang-painless",
        "org.opensearch.painless.PainlessPlugin",
        "An easy, safe and fast scripting language for OpenSearch",
        policy=_PAINLESS_POLICY,
    ),
    ModuleSpec(
        "analysis-common",
        "analysis-common",
        "org.opensearch.analysis.common.CommonAnalysisPlugin",
        'Adds "built in" analyzers to OpenSearch.',
        extended=("lang-painless",),
    ),
    ModuleSpec(
        "parent-join",
        "parent-join-client",
        "org.opensearch.join.ParentJoinPlugin",
        "This module adds the support parent-child queries and aggregations",
    ),
    ModuleSpec(
        "mapper-extras",
        "mapper-extras-client",
        "org.opensearch.index.mapper.MapperExtrasPlugin",
        "Adds advanced field mappers",
    ),
    ModuleSpec(
        "reindex",
        "reindex-client",
        "org.opensearch.index.reindex.ReindexPlugin",
        "The Reindex module adds APIs to reindex from one index to another "
        "or update documents in place.",
        policy=_REINDEX_POLICY,
    ),
    ModuleSpec(
        "percolator",
        "percolator-client",
        "org.opensearch.percolator.PercolatorPlugin",
        "Percolator module adds capability to index queries and query these queries "
        "by specifying documents",
    ),
)


class OpenSearchStartError(RuntimeError):
    pass


def _extract_zip(zip_path: Path, dest: Path) -> None:
    """Unzip keeping the unix mode bits (zipfile drops them; bin/ scripts need +x)."""
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = dest / info.filename
            if not target.resolve().is_relative_to(dest.resolve()):
                raise OpenSearchStartError(f"unsafe path in {zip_path}: {info.filename}")
            zf.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                target.chmod(mode)


def _artifact_stem(jar_name: str) -> str:
    """``lucene-core-9.12.3.jar`` -> ``lucene-core``."""
    stem = jar_name.removesuffix(".jar")
    parts = stem.split("-")
    while parts and parts[-1][:1].isdigit():
        parts.pop()
    return "-".join(parts)


def _add_module(home: Path, spec: ModuleSpec, work: Path) -> list[str]:
    mod_dir = home / "modules" / spec.name
    dep = maven.Dependency(
        "org.opensearch.plugin",
        spec.artifact,
        OPENSEARCH_VERSION,
        exclusions=("org.opensearch:opensearch",),
    )
    jars = maven.copy_dependencies(
        [dep], mod_dir, work_dir=work / spec.name, name=f"opensearch-module-{spec.name}"
    )
    # Anything already in lib/ would trip the jar-hell check: drop it from the module.
    in_lib = {_artifact_stem(p.name) for p in (home / "lib").glob("*.jar")}
    kept = []
    for jar in jars:
        if _artifact_stem(jar.name) in in_lib:
            jar.unlink()
        else:
            kept.append(jar.name)
    (mod_dir / "plugin-descriptor.properties").write_text(
        "# written by devstack.harness.opensearch (module assembled from Maven jars)\n"
        f"description={spec.description}\n"
        f"version={OPENSEARCH_VERSION}\n"
        f"name={spec.name}\n"
        f"classname={spec.classname}\n"
        "java.version=11\n"
        f"opensearch.version={OPENSEARCH_VERSION}\n"
        "custom.foldername=\n"
        f"extended.plugins={','.join(spec.extended)}\n"
        "has.native.controller=false\n"
    )
    if spec.policy:
        (mod_dir / "plugin-security.policy").write_text(spec.policy)
    return kept


def _is_ready(home: Path) -> bool:
    """The assembled home exists and has every module of EXTRA_MODULES (a newly added module
    makes the harness re-assemble)."""
    try:
        marker = json.loads((home / _READY).read_text())
    except (OSError, ValueError):
        return False
    return {spec.name for spec in EXTRA_MODULES} <= set(marker.get("modules", []))


def ensure_distribution(version: str = OPENSEARCH_VERSION) -> Path:
    """Fetch (once) and assemble the OpenSearch home; return its path.

    Idempotent and safe across processes (file lock). A warm call only checks a marker file.
    """
    if version != OPENSEARCH_VERSION:
        raise ValueError(f"only OpenSearch {OPENSEARCH_VERSION} is wired up")
    base = maven.cache_dir() / "opensearch" / version
    home = base / f"opensearch-{version}"
    if _is_ready(home):
        return home
    base.mkdir(parents=True, exist_ok=True)
    with maven.cache_lock(f"opensearch-{version}"):
        if _is_ready(home):
            return home
        t0 = time.monotonic()
        zip_path = maven.fetch_artifact(DIST_COORDS)
        t_fetch = time.monotonic() - t0
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=base))
        try:
            _extract_zip(zip_path, staging)
            staged_home = staging / f"opensearch-{version}"
            added: dict[str, list[str]] = {}
            for spec in EXTRA_MODULES:
                if (staged_home / "modules" / spec.name).exists():
                    continue
                added[spec.name] = _add_module(staged_home, spec, staging / "poms")
            (staged_home / _READY).write_text(
                json.dumps(
                    {
                        "distribution": DIST_COORDS,
                        "modules": sorted(p.name for p in (staged_home / "modules").iterdir()),
                        "modules_added_from_jars": added,
                        "fetch_seconds": round(t_fetch, 2),
                        "assemble_seconds": round(time.monotonic() - t0, 2),
                    },
                    indent=2,
                )
            )
            if home.exists():
                shutil.rmtree(home)
            staged_home.rename(home)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return home


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    with maven.cache_lock("useradd"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            subprocess.run(
                [
                    useradd,
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    name,
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            return pwd.getpwnam(name)


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link ``src`` into ``dst`` (falls back to copying across filesystems)."""

    def _link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=_link, symlinks=True)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.chown(os.path.join(root, n), uid, gid, follow_symlinks=False)


class OpenSearchNode(ServiceProcess):
    """One throwaway single-node OpenSearch cluster.

    ``start()`` returns the base URL (``http://127.0.0.1:<port>``) once
    ``GET /_cluster/health`` is yellow or green; ``stop()`` kills the process group and removes
    the temp dir. Also a context manager.
    """

    name = "OpenSearch"
    stop_timeout = 30.0
    start_error = OpenSearchStartError

    def __init__(
        self,
        *,
        heap: str = DEFAULT_HEAP,
        startup_timeout: float = 180.0,
        user: str | None = None,
        java_home: Path | None = None,
        keep_dir: bool = False,
        extra_settings: dict[str, str] | None = None,
        http_port: int | None = None,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout, keep_dir=keep_dir)
        # A fixed HTTP port (None: a free one per start): a node stopped and started again
        # then answers at the same URL, as a restarted production node does.
        self.http_port = http_port
        self.heap = heap
        self.user = user or os.environ.get("LEARNFLOW_OPENSEARCH_USER", DEFAULT_USER)
        self.java_home = java_home
        self.extra_settings = dict(extra_settings or {})

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> str:
        if self.proc is not None:
            raise RuntimeError("already started")
        dist = ensure_distribution()
        java_home = self.java_home or maven.find_java_home(
            11, 21, env_vars=("LEARNFLOW_OPENSEARCH_JAVA_HOME", "OPENSEARCH_JAVA_HOME", "JAVA_HOME")
        )
        last_error: Exception | None = None
        for _attempt in range(3):  # a free port can be taken between probe and bind
            try:
                return self._start_once(dist, java_home)
            except OpenSearchStartError as exc:
                last_error = exc
                bind_race = "BindException" in str(exc) or "Address already in use" in str(exc)
                self.stop()
                if not bind_race:
                    raise
        raise OpenSearchStartError(f"could not start OpenSearch: {last_error}")

    def _start_once(self, dist: Path, java_home: Path) -> str:
        t0 = time.monotonic()
        run = Path(tempfile.mkdtemp(prefix="learnflow-opensearch-"))
        self.run_dir = run
        for sub in ("data", "logs", "tmp", "config"):
            (run / sub).mkdir()
        as_root = os.geteuid() == 0
        home = dist
        if as_root:
            home = run / "home"
            _link_tree(dist, home)
        self._write_config(dist / "config", run)
        http_port, transport_port = self.http_port or free_port(), free_port()
        while transport_port == http_port:
            transport_port = free_port()
        settings = {
            "cluster.name": f"learnflow-{uuid.uuid4().hex[:8]}",
            "node.name": "learnflow-node",
            "discovery.type": "single-node",
            "network.host": "127.0.0.1",
            "http.host": "127.0.0.1",
            "transport.host": "127.0.0.1",
            "http.port": str(http_port),
            "transport.port": str(transport_port),
            "path.data": str(run / "data"),
            "path.logs": str(run / "logs"),
            "bootstrap.memory_lock": "false",
            "cluster.routing.allocation.disk.threshold_enabled": "false",
        }
        if (home / "plugins" / "opensearch-security").is_dir():
            settings["plugins.security.disabled"] = "true"
        settings.update(self.extra_settings)
        cmd = [str(home / "bin" / "opensearch")] + [f"-E{k}={v}" for k, v in settings.items()]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(run),
            "OPENSEARCH_JAVA_HOME": str(java_home),
            "OPENSEARCH_PATH_CONF": str(run / "config"),
            "OPENSEARCH_TMPDIR": str(run / "tmp"),
            "OPENSEARCH_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap}",
        }
        prefix: list[str] = []
        setpriv = shutil.which("setpriv")
        if as_root:
            if not setpriv:
                raise OpenSearchStartError("running as root needs `setpriv` (util-linux)")
            pw = _ensure_user(self.user)
            _chown_tree(run / "config", pw.pw_uid, pw.pw_gid)
            for sub in ("data", "logs", "tmp"):
                _chown_tree(run / sub, pw.pw_uid, pw.pw_gid)
            os.chown(run, pw.pw_uid, pw.pw_gid)
            prefix = [
                setpriv,
                f"--reuid={pw.pw_uid}",
                f"--regid={pw.pw_gid}",
                "--clear-groups",
            ]
        if setpriv:
            # Kill the node if the Python process that started it dies (e.g. SIGKILLed pytest).
            prefix = (prefix or [setpriv]) + ["--pdeathsig", "TERM", "--"]
        self.command = prefix + cmd
        self.port = http_port
        self.url = f"http://127.0.0.1:{http_port}"
        self._launch(cwd=run, env=env)
        self._wait_healthy()
        self.start_seconds = time.monotonic() - t0
        return self.url

    def _write_config(self, src: Path, run: Path) -> None:
        conf = run / "config"
        shutil.copy2(src / "log4j2.properties", conf / "log4j2.properties")
        (conf / "jvm.options.d").mkdir(exist_ok=True)
        (conf / "opensearch.yml").write_text("# settings are passed with -E by learnflow\n")
        lines = []
        for line in (src / "jvm.options").read_text().splitlines():
            s = line.strip()
            if s.startswith(("-Xms", "-Xmx")):
                continue
            line = line.replace("HeapDumpPath=data", f"HeapDumpPath={run / 'tmp'}")
            line = line.replace("logs/", f"{run / 'logs'}/")
            lines.append(line)
        lines += [f"-Xms{self.heap}", f"-Xmx{self.heap}"]
        (conf / "jvm.options").write_text("\n".join(lines) + "\n")

    def _log_tail(self, n: int = 60) -> str:
        if not self.run_dir:
            return ""
        out = []
        for f in [self.run_dir / "console.log", *sorted((self.run_dir / "logs").glob("*.log"))]:
            with contextlib.suppress(OSError):
                text = f.read_text(errors="replace").splitlines()
                out.append(f"--- {f.name} (last {n} lines)\n" + "\n".join(text[-n:]))
        return "\n".join(out)

    def _wait_healthy(self) -> None:
        def healthy() -> bool:
            health = self.health(timeout=2.0)
            return bool(health) and health.get("status") in ("yellow", "green")

        self._wait_until(healthy, "cluster health not yellow/green", 0.5)

    def health(self, timeout: float = 5.0) -> dict | None:
        """``GET /_cluster/health`` as a dict, or None if the node does not answer."""
        if not self.url:
            return None
        try:
            with urllib.request.urlopen(  # noqa: S310 - fixed http://127.0.0.1 URL
                f"{self.url}/_cluster/health", timeout=timeout
            ) as resp:
                return json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None


@contextlib.contextmanager
def running_opensearch(**kwargs: object) -> Iterator[str]:
    """``with running_opensearch() as url:`` start a throwaway node, stop it afterwards."""
    node = OpenSearchNode(**kwargs)  # type: ignore[arg-type]
    try:
        yield node.start()
    finally:
        node.stop()


def main() -> None:  # pragma: no cover - manual use: python -m devstack.harness.opensearch
    node = OpenSearchNode()
    url = node.start()
    print(f"OpenSearch {OPENSEARCH_VERSION} at {url} (started in {node.start_seconds:.1f}s)")
    print("command:", " ".join(node.command))
    print("Ctrl-C to stop")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
