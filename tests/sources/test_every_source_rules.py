"""Rules MIT Learn applies to every source: clean_data, topic crosswalks, best run, blocklist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from learnflow.models import Resource, ResourceType, Run, TransformOutput
from learnflow.reference import reference_data
from sources._blocklist import apply_blocklist, parse_blocklist
from sources._catalog import best_run, copy_run_values
from sources.base import clean_html

# The fidelity suite (issue 16): checked against MIT Learn's ETL, not against learnflow's output.
pytestmark = [pytest.mark.fidelity]

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_clean_data_keeps_its_short_tag_list_and_no_attribute():
    html = (
        '<h2 class="t">Title</h2><p style="x" class="y">A <a href="https://x.org" title="t">link'
        '</a> and <img src="a.png"> <strong>bold</strong></p><table><tr><td>cell</td></tr></table>'
        "<script>alert(1)</script>"
    )
    # main/constants.py: no h*, a, img or table tags; ALLOWED_HTML_ATTRIBUTES is empty
    assert clean_html(html) == "Title<p>A link and  <strong>bold</strong></p>cell"


def test_podcasts_keep_links_with_href_and_title_only():
    html = '<p><a href="https://x.org" title="t" class="c" target="_blank">show notes</a></p>'
    cleaned = clean_html(html, links=True)
    assert cleaned is not None
    assert 'href="https://x.org"' in cleaned and 'title="t"' in cleaned
    assert "class=" not in cleaned and "target=" not in cleaned


def test_an_offeror_topic_name_maps_to_every_topic_that_lists_it():
    ref = reference_data()
    # topics.yaml lists mitx "Design" under both "Visual Arts" and "Visualization"
    mapped = ref.map_topics(["Design"], "mitx")
    assert {"Visual Arts", "Visualization"} <= set(mapped)
    # parents follow (add_parent_topics_to_learning_resource)
    assert "Art, Design & Architecture" in mapped
    # a listed name maps only to the topics that list it (and their parents)
    listed = ref.crosswalk["mitx"]["design"]
    parents = {ref.topics[t.lower()]["parent"] for t in listed} - {None}
    assert set(mapped) == set(listed) | parents
    many = [(o, n) for o, walk in ref.crosswalk.items() for n, ts in walk.items() if len(ts) > 1]
    assert len(many) == 25  # the count, from the same topics.yaml


def _run(run_id: str, published: bool, start: datetime | None) -> Run:
    return Run(run_id=run_id, published=published, start_date=start, duration="9 weeks")


def test_best_run_is_none_without_a_published_run_and_nothing_is_copied():
    runs = [_run("a", False, NOW - timedelta(days=30)), _run("b", False, NOW + timedelta(days=3))]
    assert best_run(runs, NOW) is None
    course = Resource(
        readable_id="c", platform="edx", resource_type="course", etl_source="mit_edx", title="C"
    )
    assert copy_run_values(course, best_run(runs, NOW)) == course


def test_best_run_is_the_enrollable_published_run_that_starts_first():
    runs = [
        _run("past", True, NOW - timedelta(days=300)),
        _run("later", True, NOW + timedelta(days=60)),
        _run("soon", True, NOW + timedelta(days=10)),
        _run("hidden", False, NOW + timedelta(days=1)),
    ]
    # no enrollment dates and no end: every published run is enrollable; the earliest start wins
    assert best_run(runs, NOW).run_id == "past"


def test_blocklist_unpublishes_listed_courses_only():
    blocked = parse_blocklist(b"\n course-a \r\nprogram-b\n")
    assert blocked == {"course-a", "program-b"}
    out = TransformOutput(
        resources=[
            Resource(readable_id=i, platform="p", resource_type=t, etl_source="s", title=i)
            for i, t in (
                ("course-a", ResourceType.course),
                ("course-c", ResourceType.course),
                ("program-b", ResourceType.program),
            )
        ]
    )
    published = {r.readable_id: r.published for r in apply_blocklist(out, blocked).resources}
    # load_course checks the blocklist; load_program does not
    assert published == {"course-a": False, "course-c": True, "program-b": True}


def test_kept_differences_none_stays_none_and_topic_names_ignore_case():
    # clean_data returns "" for no text; learnflow keeps None (base.clean_html's docstring)
    assert clean_html(None) is None
    # MIT Learn matches topic names exactly; learnflow ignores case (reference.map_topics)
    ref = reference_data()
    assert ref.map_topics(["design"], "mitx") == ref.map_topics(["Design"], "mitx")
