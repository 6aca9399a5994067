"""A programs page's context read by key (`IndexedPage`) gives what the parsed pages give.

edX's and MITx Online's programs pages read the run's course pages (`context_kinds`); a worker
hands them the course pages indexed by key when it holds them, so a page of programs unpickles
the courses it names instead of parsing the whole catalog again. The output must not move.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from sources import edx, mitxonline
from sources.base import IndexedPage, index_items, items_of
from sources.edx_demo import edx_catalog
from sources.mitxonline_demo import mitxonline_catalog

NOW = datetime(2031, 1, 1, tzinfo=UTC)


def _pages(items: list, size: int) -> list[dict]:
    """DRF pages as the API serves them (parsed)."""
    return [{"results": items[i : i + size]} for i in range(0, len(items), size)]


def _dump(out) -> str:
    return json.dumps(out.model_dump(mode="json"), sort_keys=True)


def test_edx_programs_read_indexed_courses_as_parsed_ones(monkeypatch):
    monkeypatch.setattr(edx, "clock", lambda: NOW)
    courses, programs = edx_catalog(96)
    # the same course on two pages (the later published one wins, as in the parsed walk), an
    # unpublished later copy (it does not), an item without a text key, one that fails
    republished = {**courses[0], "subjects": courses[5]["subjects"]}
    assert courses[5]["subjects"] != courses[0]["subjects"]
    unpublished = {
        **courses[1],
        "course_runs": [{**r, "status": "unpublished"} for r in courses[1]["course_runs"]],
    }
    broken = {**courses[2], "course_runs": "not a list of runs"}
    extra = [unpublished, broken, {"key": 7, "title": "no text key"}, "not a dict"]
    # the republished copy on the first copy's page, the others on the last page
    context = _pages([courses[0], republished, *courses[1:], *extra], 20)
    parsed = edx.transform("programs", {"results": programs}, context)
    indexed = [edx.index_context(page) for page in context]
    assert all(isinstance(p, IndexedPage) for p in indexed)
    by_key = edx.transform("programs", {"results": programs}, indexed)
    assert parsed.resources and _dump(by_key) == _dump(parsed)
    first = next(r for r in by_key.resources if r.readable_id == programs[0]["uuid"])
    assert first.topics  # the members were found: their topics
    # a mix of parsed and indexed pages reads as either
    mixed = [p if n % 2 else edx.index_context(p) for n, p in enumerate(context)]
    assert _dump(edx.transform("programs", {"results": programs}, mixed)) == _dump(parsed)


def test_mitxonline_programs_read_indexed_courses_as_parsed_ones(monkeypatch):
    monkeypatch.setattr(mitxonline, "clock", lambda: NOW)
    courses, programs = mitxonline_catalog(60)
    # a course listed twice on one page (the later copy wins: not live, it is no child) and on
    # a later page, and an item that is neither course nor program
    relisted = {**courses[1], "page": {**courses[1]["page"], "live": False}}
    later = {**courses[2], "page": {**courses[2]["page"], "live": False}}
    context = _pages([*courses[:2], relisted, *courses[2:], later, {"id": 9999}], 25)
    parsed = mitxonline.transform("programs", {"results": programs}, context)
    indexed = [mitxonline.index_context(page) for page in context]
    by_key = mitxonline.transform("programs", {"results": programs}, indexed)
    assert parsed.resources and _dump(by_key) == _dump(parsed)
    first = next(r for r in by_key.resources if r.readable_id == programs[0]["readable_id"])
    children = [rel.child.readable_id for rel in first.relationships]
    assert children == [courses[0]["readable_id"], courses[3]["readable_id"]]


def test_mitxonline_leaves_the_combined_shape_parsed():
    with pytest.raises(ValueError):
        mitxonline.index_context({"programs": [], "courses": []})


def test_an_indexed_item_comes_back_as_parsed():
    """Pickled, not JSON: a NaN, an integer beyond 64 bits and a lone surrogate come back."""
    item = {"key": "k", "nan": math.nan, "big": 2**80, "text": "\ud800", "nested": [{"a": 1.5}]}
    page = index_items({"results": [item, {"key": None}]}, lambda i: i.get("key"))
    (back,) = page.get("k")
    assert math.isnan(back.pop("nan")) and back == {k: v for k, v in item.items() if k != "nan"}
    assert page.get("missing") == [] and page.size > 0
    with pytest.raises(ValueError):  # not a page: the caller gives the parsed page instead
        index_items({"neither": 1}, lambda i: i)
    with pytest.raises(TypeError):  # an unhashable key: likewise
        index_items([{"id": [1]}], lambda i: i["id"])
    assert items_of([item]) == [item]
