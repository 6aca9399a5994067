"""Hypothesis strategies that corrupt a real payload item: the property tests of every source."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

# Values of the wrong type for any field.
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def field_paths(node: Any, prefix: tuple = (), depth: int = 0, max_depth: int = 3) -> list[tuple]:
    """Every key/index path into `node` down to `max_depth` (lists: their first 3 items)."""
    out: list[tuple] = []
    if depth > max_depth:
        return out
    if isinstance(node, dict):
        for k, v in node.items():
            out += [(*prefix, k), *field_paths(v, (*prefix, k), depth + 1, max_depth)]
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            out += [(*prefix, i), *field_paths(v, (*prefix, i), depth + 1, max_depth)]
    return out


@st.composite
def corrupted(draw, item: Any, max_depth: int = 3, max_fields: int = 4) -> Any:
    """`item` with a few fields removed or replaced by a value of the wrong type: at any depth
    down to `max_depth` (0: top-level fields only), at most `max_fields` of them."""
    item = copy.deepcopy(item)
    paths = field_paths(item, max_depth=max_depth)
    for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=max_fields)):
        parent = item
        try:
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(JUNK)
        except (KeyError, IndexError, TypeError):
            continue
    return item
