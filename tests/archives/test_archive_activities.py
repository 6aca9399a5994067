"""Archive activities run on their own (ActivityEnvironment), for the paths that decide without
S3 or the database: the OCW prefixes a webhook sends, a delete whose prefix is too short, and the
typed failure of an unknown archive source."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.archives.discover import discover_course_archives, discover_ocw_sites
from activities.archives.retire import delete_course_content
from learnflow.contracts.archives import (
    DeleteCourseContentInput,
    DiscoverArchivesInput,
    DiscoverOcwInput,
)


async def test_discover_ocw_sites_validates_the_webhook_prefixes():
    out = await ActivityEnvironment().run(
        discover_ocw_sites,
        DiscoverOcwInput(
            prefixes=["courses/18-03-spring/", "/courses/6-001", "18-03-spring", "../etc", ""]
        ),
    )
    assert out.prefixes == ["courses/18-03-spring", "courses/6-001"]
    assert out.rejected == ["", "../etc"]


@pytest.mark.parametrize("course_id", ["", "abc", "  ab  "])
async def test_delete_refuses_a_prefix_that_could_match_unrelated_courses(course_id):
    out = await ActivityEnvironment().run(
        delete_course_content, DeleteCourseContentInput(source="canvas", course_id=course_id)
    )
    assert out.outcome == "refused"
    assert "shorter than" in (out.reason or "")
    assert out.resources == 0 and out.content_files == 0


async def test_an_unknown_archive_source_fails_without_retry():
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(
            discover_course_archives, DiscoverArchivesInput(source="ocw")
        )
    assert info.value.type == "UnknownArchiveSource" and info.value.non_retryable
