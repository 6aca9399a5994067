"""Per-source modules. Each module `sources/<name>.py` defines `SOURCE`; this registry finds them."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from learnflow.errors import UnknownSource
from sources.base import Source

_NOT_SOURCES = {"base", "archives"}


@lru_cache(maxsize=1)
def all_sources() -> dict[str, Source]:
    found: dict[str, Source] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_SOURCES or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"sources.{info.name}")
        spec = getattr(module, "SOURCE", None)
        if isinstance(spec, Source):
            found[spec.name] = spec
    return dict(sorted(found.items()))


def get_source(name: str) -> Source:
    try:
        return all_sources()[name]
    except KeyError:
        raise UnknownSource(f"unknown source {name!r}; known: {', '.join(all_sources())}") from None
