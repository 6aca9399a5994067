"""`learn up --demo`: serves every source's demo payloads (`sources/<name>_demo.py`, found by the
registry) and decides which schedules the demo runs.

Nothing here reads ../shared: the demo must run offline on a fresh machine. The generators are
seeded, so two runs serve the same catalog (and the second ingestion rewrites nothing).
"""

from __future__ import annotations

from devstack.harness.fixture_server import FixtureServer
from sources import demo_installers
from sources.archives.demo import install_demo_archives as install_demo_archives

# Sources the demo serves; `learn up --demo` triggers only these (others would call the internet).
# sloan_news is served but its schedule is created paused (as MIT Learn's): trigger it by hand.
DEMO_SOURCES = tuple(demo_installers())


def install_demo(server: FixtureServer) -> dict[str, str]:
    """Every demo source on one server; returns the environment that points learnflow at it."""
    env = {"HTTP_ALLOW_PRIVATE_HOSTS": "true"}
    for install in demo_installers().values():
        env.update(install(server))
    return env


# Archive schedules (`archives/<source>`) the demo serves, and the catalog source each waits for
# (an OLX archive loads only into a run that source's ingestion created; Canvas makes its own).
DEMO_ARCHIVE_SOURCES = {"mitxonline": "mitxonline", "xpro": "xpro", "edx": "edx", "canvas": None}

# -- Marketing pages ------------------------------------------------------------------------------
# The marketing_pages source GETs each catalog course's and program's own page on the real sites;
# `learn up --demo` answers those through a forward proxy (devstack/demo_web.py).

DEMO_SCRAPED_SOURCES = ("marketing_pages",)
# The demo sources whose courses/programs have pages; the marketing pages run after them.
DEMO_CATALOG_SOURCES = ("mitxonline", "edx", "xpro", "mitpe", "sloan", "micromasters", "oll")


# -- Which schedules the demo runs ---------------------------------------------------------------


def demo_serves(source: str | None, workflow: str) -> bool:
    """Whether `learn up --demo` has payloads for a schedule (the others stay paused: they would
    call the internet). Schedules of no source (embeddings, purge) need none."""
    if source is None:
        return True
    if workflow == "IngestArchivesWorkflow":
        return source in DEMO_ARCHIVE_SOURCES
    return source in DEMO_SOURCES or source in DEMO_SCRAPED_SOURCES


def demo_prerequisites(source: str | None, workflow: str) -> tuple[str, ...]:
    """Schedule ids whose first demo run must complete before this schedule's first run: an OLX
    archive loads only into a run its catalog created; the marketing pages scrape catalog URLs."""
    if workflow == "IngestArchivesWorkflow" and (catalog := DEMO_ARCHIVE_SOURCES.get(source or "")):
        return (f"ingest/{catalog}",)
    if source in DEMO_SCRAPED_SOURCES:
        return tuple(f"ingest/{catalog}" for catalog in DEMO_CATALOG_SOURCES)
    return ()


# The OCW site has no schedule (MIT Learn runs it on webhook): the demo starts one run itself.
DEMO_OCW_WORKFLOW_ID = "demo/ocw"
