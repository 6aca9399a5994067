"""Sloan Executive Education and MIT Professional Education against MIT Learn's sloan.py and
mitpe.py on the recorded payloads (frozen clocks); expectations re-state MIT Learn's rules."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sources import mitpe, sloan
from tests.conftest import TEST_JSON

# The fidelity suite (issue 16): checked against MIT Learn's ETL, not against learnflow's output.
pytestmark = [pytest.mark.fidelity]


def _load(name: str):
    return json.loads((TEST_JSON / name).read_bytes())


def test_sloan_courses_and_runs(monkeypatch):
    monkeypatch.setattr(sloan, "clock", lambda: datetime(2024, 9, 1, tzinfo=UTC))
    courses, runs = _load("test_sloan_courses.json"), _load("test_sloan_runs.json")
    out = sloan.transform("courses", courses, [runs])
    by_id = {r.readable_id: r for r in out.resources}
    assert by_id
    for course in out.resources:
        raw_runs = [r for r in runs if r["Course_Id"] == course.readable_id]
        # every course: professional certificate, published, offered by see
        assert (course.certification, course.certification_type) == (True, "professional")
        assert (course.professional, course.offered_by, course.platform) == (True, "see", "see")
        assert course.pace == sorted({p for r in course.runs for p in r.pace})
        for run in course.runs:
            raw = next(r for r in raw_runs if r["CO_Title"] == run.run_id)
            assert (run.published, run.status) == (True, "Current")
            assert [p.amount for p in run.prices] == [Decimal(raw["Price"])]
            names = (
                [n.strip() for n in raw["Faculty_Name"].split(",")] if raw["Faculty_Name"] else []
            )
            assert [i.full_name for i in run.instructors] == names


def test_mitpe_runs_published_until_enrollment_or_the_run_ends(monkeypatch):
    pages = [_load(f"mitpe/professional_ed_resources_{i}.json") for i in range(3)]
    items = [i for page in pages for i in page]
    before = datetime(2024, 1, 1, tzinfo=UTC)
    monkeypatch.setattr(mitpe, "clock", lambda: before)
    out = mitpe.transform_pages("courses", pages)
    by_id = {r.readable_id: r for r in out.resources}
    assert any(r.runs for r in out.resources)
    for item in items:
        resource = by_id.get(item["uuid"])
        if resource is None:
            continue
        assert (resource.certification, resource.certification_type) == (True, "professional")
        price = re.sub(r"[^0-9\\.]", "", item["price"]) if item["price"] else None
        for run in resource.runs:
            assert run.published is True  # only runs still open are kept
            assert [p.amount for p in run.prices] == ([Decimal(price)] if price else [])
            assert (run.pace, run.availability) == (["instructor_paced"], "dated")
            closes = run.enrollment_end or run.end_date
            assert closes is None or closes >= before
    # a century later every recorded run has closed: nothing stays published
    monkeypatch.setattr(mitpe, "clock", lambda: datetime(2124, 1, 1, tzinfo=UTC))
    later = mitpe.transform_pages("courses", pages)
    assert all(not r.published or not r.runs for r in later.resources)
