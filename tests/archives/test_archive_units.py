"""The pure parts of the archive pipeline: discovery rules, run matching, ids, LIKE escaping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.exceptions import ApplicationError

from activities.archives.ocw import ocw_prefix
from learnflow.contracts.archives import IngestArchivesInput
from learnflow.db.content_files import ArchiveRun, escape_like
from learnflow.settings import Settings
from sources import archive_source
from sources.archives.spec import (
    course_id_for_key,
    match_run,
    newest_per_course,
    normalise_run_id,
)
from workflows.archives import archive_workflow_id

S = Settings()  # the defaults (LEARNFLOW_ENV_FILE is empty under the tests)


def _run(run_id: str, n: int = 1) -> ArchiveRun:
    return ArchiveRun(n, n, run_id, f"r{n}", "x", "p", True, False, True, None, None)


def test_sources_and_aliases():
    assert archive_source("edx").name == "mit_edx"
    assert archive_source("mit_edx").prefix(S) == "edxorg-raw-data/edxorg/raw_data/course_xml/"
    assert archive_source("oll").prefix(S) == "open-learning-library/courses/"
    assert archive_source("canvas").kind == "canvas"
    with pytest.raises(ApplicationError) as info:
        archive_source("ocw")
    assert info.value.type == "UnknownArchiveSource" and info.value.non_retryable


@pytest.mark.parametrize(
    ("source", "key", "course"),
    [
        (
            "mitxonline",
            "mitxonline/openedx/raw_data/course_xml/course-v1:A+B+C/x.tar.gz",
            "course-v1:A+B+C",
        ),
        (
            "mitxonline",
            "mitxonline/openedx/raw_data/course_xml/course-v1:A+B+C.tar.gz",
            "course-v1:A+B+C",
        ),
        ("mitxonline", "mitxonline/openedx/raw_data/course_xml/a/notes.txt", None),
        ("mitxonline", "xpro/openedx/raw_data/course_xml/a/b.tar.gz", None),
        ("oll", "open-learning-library/courses/MITx+1.0x+1T2020.tar.gz", "MITx+1.0x+1T2020"),
        ("oll", "open-learning-library/courses/sub/MITx+1.0x+1T2020.tar.gz", "MITx+1.0x+1T2020"),
        ("canvas", "canvas/course_content/14566/export.imscc", "14566"),
        ("canvas", "canvas/course_content/export.imscc", None),
        ("canvas", "canvas/course_content/14566/export.metadata.json", None),
    ],
)
def test_course_id_for_key(source, key, course):
    src = archive_source(source)
    assert course_id_for_key(src, key, src.prefix(S)) == course


def test_newest_archive_per_course():
    src = archive_source("xpro")
    p = src.prefix(S)
    t = lambda d: datetime(2024, 1, d, tzinfo=UTC)  # noqa: E731
    refs = newest_per_course(
        src,
        p,
        [
            (f"{p}c1/old.tar.gz", t(1)),
            (f"{p}c1/new.tar.gz", t(3)),
            (f"{p}c1/mid.tar.gz", t(2)),
            (f"{p}c2/a.tar.gz", t(1)),
            (f"{p}c2/b.tar.gz", t(1)),  # same time: the greater key wins
            (f"{p}c3/readme.md", t(9)),
        ],
    )
    assert {c: r.key for c, r in refs.items()} == {
        "c1": f"{p}c1/new.tar.gz",
        "c2": f"{p}c2/b.tar.gz",
    }


def test_run_matching_normalises_like_mit_learn():
    assert normalise_run_id("mit_edx", "course-v1:MITx+6.00.1x+2T2022") == "mitx.6.00.1x.2t2022"
    assert normalise_run_id("mit_edx", "MITx-6.00.1x-2T2022") == "mitx.6.00.1x.2t2022"
    assert normalise_run_id("oll", "course-v1:MITx+18.01_x+1T2020") == "18.01.x.1t2020"
    assert normalise_run_id("mitxonline", "course-v1:A+B") == "course-v1:A+B"  # exact
    runs = [_run("MITx+6.00.1x+2T2022", 1), _run("MITx+6.00.2x+2T2022", 2)]
    assert [r.id for r in match_run("mit_edx", "course-v1:mitx+6.00.1x+2t2022", runs)] == [1]
    assert match_run("mitxonline", "course-v1:mitx+6.00.1x+2t2022", runs) == []


def test_ocw_prefixes_are_single_site_paths():
    assert ocw_prefix("courses/16-01-x/") == "courses/16-01-x"
    assert ocw_prefix("/courses/16-01-x") == "courses/16-01-x"
    assert ocw_prefix("16-01-x") == "courses/16-01-x"
    assert ocw_prefix("courses/a/b") is None
    assert ocw_prefix("courses/..") is None
    assert ocw_prefix("courses/a b") is None


def test_workflow_ids_and_like_escaping():
    assert archive_workflow_id("xpro", "course-v1:A+B+C") == "archive/xpro/course-v1:A+B+C"
    long_id = archive_workflow_id("xpro", "x" * 600)
    assert len(long_id) < 200 and long_id.startswith("archive/xpro/xxx")
    assert escape_like("a_b%c\\d") == "a\\_b\\%c\\\\d"


def test_schedule_argument_is_a_valid_input():
    """The schedule table starts IngestArchivesWorkflow with `{"source": ...}`."""
    req = IngestArchivesInput.model_validate({"source": "edx"})
    assert req.max_concurrent >= 1 and req.after_course is None and not req.overwrite
