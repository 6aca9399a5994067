"""edX against MIT Learn's openedx.py / mit_edx*.py, on the recorded catalog (frozen clock)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from sources import edx
from tests.conftest import TEST_JSON

# The fidelity suite (issue 16): checked against MIT Learn's ETL, not against learnflow's output.
pytestmark = [pytest.mark.fidelity]

COURSES = json.loads((TEST_JSON / "test_mitx_course.json").read_bytes())
PROGRAMS = json.loads((TEST_JSON / "test_mitx_programs.json").read_bytes())
NOW = datetime(2019, 1, 1, tzinfo=UTC)


def test_course_and_runs(monkeypatch):
    monkeypatch.setattr(edx, "clock", lambda: NOW)
    out = edx.transform("courses", COURSES)
    course = next(r for r in out.resources if r.readable_id == "MITx+15.071x")
    (run,) = course.runs
    # run last_modified = max(course modified, run modified); full_description kept
    raw = COURSES["results"][0]
    modified = [
        datetime.fromisoformat(v) for v in (raw["modified"], raw["course_runs"][0]["modified"])
    ]
    assert run.last_modified == max(modified)
    assert course.last_modified == modified[0]
    assert run.full_description is not None
    # status "published" but not is_enrollable: the run and the course are unpublished, and
    # best_run is None, so nothing is copied from the run
    assert (run.published, course.published) == (False, False)
    assert (course.duration, course.time_commitment, course.prices) == (None, None, [])
    assert course.certification is False  # parse_certification: no published run
    # the mitx crosswalk lists "Data Analysis & Statistics" under Data Science (+ its parent)
    assert [t.name for t in course.topics] == [
        "Data Science",
        "Data Science, Analytics & Computer Technology",
    ]


def _enrollable_course(key: str, hours: tuple[int, int], weeks: int, staff: str) -> dict:
    raw = copy.deepcopy(COURSES["results"][0])
    raw["key"] = key
    run = raw["course_runs"][0]
    run["key"] = f"course-v1:{key}+1T2019"
    run["is_enrollable"] = True
    run["min_effort"], run["max_effort"] = hours
    run["weeks_to_complete"] = weeks
    run["staff"] = [{"given_name": staff, "family_name": staff + "son"}]
    return raw


def test_program_reads_topics_instructors_and_effort_from_the_published_courses(monkeypatch):
    monkeypatch.setattr(edx, "clock", lambda: NOW)
    courses = {
        "results": [
            _enrollable_course("MITx+6.002.1x", (4, 6), 5, "Bea"),
            _enrollable_course("MITx+6.002.2x", (5, 9), 7, "Al"),
        ]
    }
    out = edx.transform("programs", PROGRAMS, [courses])
    (program,) = out.resources
    (run,) = program.runs
    # duration: the sum of the courses' max_weeks; effort: the rounded mean of their hours
    assert (program.duration, program.min_weeks, program.max_weeks) == ("12 weeks", 12, 12)
    assert (run.min_weekly_hours, run.max_weekly_hours) == (4, 8)  # round(4.5)=4, round(7.5)=8
    assert run.time_commitment == "4-8 hours/week"
    # instructors of each course's best run, sorted by last name
    assert [i.full_name for i in run.instructors] == ["Al Alson", "Bea Beason"]
    # topics: every topic of those courses (parents included), sorted by name
    assert [t.name for t in program.topics] == [
        "Data Science",
        "Data Science, Analytics & Computer Technology",
    ]
    assert run.last_modified == program.last_modified is not None
