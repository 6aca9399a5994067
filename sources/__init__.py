"""Per-source modules. Each module `sources/<name>.py` defines `SOURCE`; this registry finds them.

A module (or one in `sources/archives/`) that also defines `ARCHIVE` (an `ArchiveSource`) is an
archive source too: its course archives in S3 load as content files.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from learnflow.errors import UnknownArchiveSource, UnknownSource
from sources.base import Source

if TYPE_CHECKING:
    from learnflow.schedules import ScheduledWorkflow
    from sources.archives.spec import ArchiveSource

_NOT_SOURCES = {"base", "archives"}
T = TypeVar("T")
# The schedule table names catalog sources; `edx` is MIT Learn's `mit_edx` ETL source.
ARCHIVE_ALIASES = {"edx": "mit_edx"}


def _modules() -> Iterator[ModuleType]:
    import sources.archives as archives

    for package, skip in ((__path__, _NOT_SOURCES), (archives.__path__, {"spec", "demo"})):
        prefix = "sources." if package is __path__ else "sources.archives."
        for info in pkgutil.iter_modules(package):
            if info.name in skip or info.name.startswith("_") or info.name.endswith("_demo"):
                continue
            yield importlib.import_module(prefix + info.name)


def _collect(attr: str, kind: type[T]) -> dict[str, T]:
    found: dict[str, T] = {}
    for module in _modules():
        spec = getattr(module, attr, None)
        if isinstance(spec, kind):
            found[spec.name] = spec  # type: ignore[attr-defined]
    return dict(sorted(found.items()))


@lru_cache(maxsize=1)
def all_sources() -> dict[str, Source]:
    return _collect("SOURCE", Source)


def get_source(name: str) -> Source:
    try:
        return all_sources()[name]
    except KeyError:
        raise UnknownSource(f"unknown source {name!r}; known: {', '.join(all_sources())}") from None


@lru_cache(maxsize=1)
def all_archive_sources() -> dict[str, ArchiveSource]:
    from sources.archives.spec import ArchiveSource

    return _collect("ARCHIVE", ArchiveSource)


def archive_source(name: str) -> ArchiveSource:
    """The archive source by ETL name or schedule alias (`edx`); typed failure otherwise."""
    found = all_archive_sources().get(ARCHIVE_ALIASES.get(name, name))
    if found is None:
        known = ", ".join(all_archive_sources())
        raise UnknownArchiveSource(f"no archive source {name!r}; known: {known}")
    return found


def demo_installers() -> dict[str, Callable[[Any], dict[str, str]]]:
    """Each source's demo payload generator: `install(server)` of `sources/<name>_demo.py`."""
    found: dict[str, Callable[[Any], dict[str, str]]] = {}
    for name in all_sources():
        try:
            module = importlib.import_module(f"sources.{name}_demo")
        except ModuleNotFoundError as exc:
            if exc.name != f"sources.{name}_demo":
                raise
            continue
        found[name] = module.install
    return found


def all_schedules() -> tuple[ScheduledWorkflow, ...]:
    """Every schedule: each source module's `SCHEDULES`, then the platform's."""
    from learnflow.schedules import PLATFORM_SCHEDULES

    found: list[ScheduledWorkflow] = []
    for module in _modules():
        found.extend(getattr(module, "SCHEDULES", ()))
    return (*found, *PLATFORM_SCHEDULES)
