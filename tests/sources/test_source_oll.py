"""Open Learning Library: the bundled metadata CSV, quarantine, extract from a URL or the file."""

from __future__ import annotations

import copy
import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.harness.fixture_server import FixtureServer, Response
from learnflow.http import SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import oll
from sources.base import ExtractContext
from tests.helpers.corruption import JUNK, corrupted
from tests.helpers.fixtures import SHARED

CSV_FILE = SHARED / "fixtures" / "mitlearn" / "learning_resources" / "data" / "oll_metadata.csv"
CSV_BYTES = CSV_FILE.read_bytes()
ROWS = list(csv.DictReader(io.StringIO(CSV_BYTES.decode("utf-8"))))


def test_csv_fields():
    out = oll.transform("courses", CSV_BYTES)
    assert not out.quarantined
    assert len(ROWS) == 64 and len(out.resources) == 63  # OCW+18.031+2019_Spring is skipped
    by_id = {r.readable_id: r for r in out.resources}
    assert "18.031+spring_2019" not in by_id

    mitx = by_id["MITx+0.501x"]
    assert (mitx.platform, mitx.etl_source, mitx.offered_by, mitx.resource_type) == (
        "oll",
        "oll",
        "mitx",
        "course",
    )
    assert mitx.published is True
    assert mitx.availability == "anytime" and mitx.pace == ["self_paced"]
    assert mitx.course_numbers[0].value == "0.501x"
    assert {"Pedagogy and Curriculum", "Digital Learning"} <= {t.name for t in mitx.topics}
    (run,) = mitx.runs
    assert run.run_id == "MITx+0.501x+2T2019"
    assert (run.year, run.semester) == (2019, "summer")
    assert run.status == "Archived" and run.level == ["graduate"]
    assert [i.full_name for i in run.instructors] == [
        "Justin Reich",
        "Elizabeth Huttner-Loan",
        "Alyssa Napier",
    ]
    assert run.url == mitx.url and mitx.url.startswith("https://openlearninglibrary.mit.edu/")
    assert mitx.image.url == run.image.url and mitx.image.alt == mitx.title

    ocw = by_id["18.05+summer_2022"]  # OCW rows: number + slug(semester)_year from the run key
    assert ocw.offered_by == "ocw"
    assert ocw.title == "Introduction to Probability and Statistics"
    assert ocw.runs[0].run_id == "MITx+18.05r_10+2022_Summer"
    assert (ocw.runs[0].year, ocw.runs[0].semester) == (2022, "Summer")
    assert [i.full_name for i in ocw.runs[0].instructors] == [
        "Jeremy Orloff",
        "Jennifer French Kamrin",
    ]
    assert ocw.runs[0].level == ["undergraduate"]
    assert sorted(r.readable_id for r in out.resources if r.offered_by == "ocw") == [
        "18.05+summer_2022",
        "18.06SC+summer_2019",
        "6.042J+summer_2019",
        "7.InTr_1+fall_2021",
        "Pre_7.01r+spring_2020",
    ]


def test_educational_policy_is_renamed():
    row = next(r for r in ROWS if "Educational Policy" in r["MITxO Primary Child"])
    (course,) = oll.transform("courses", [row]).resources
    assert "Education Policy" in [t.name for t in course.topics]


def test_bad_rows_are_quarantined_the_rest_load():
    rows = copy.deepcopy(ROWS[1:4])
    rows[1]["title"] = ""
    out = oll.transform("courses", rows)
    assert len(out.resources) == 2
    (bad,) = out.quarantined
    assert bad.source == "oll" and bad.item_key == rows[1]["readable_id"] and "title" in bad.reason


def test_wrong_shape_raises_value_error():
    with pytest.raises(ValueError):
        oll.transform("courses", "name,email\nx,y\n")
    with pytest.raises(ValueError):
        oll.transform("courses", {"rows": []})
    with pytest.raises(ValueError):
        oll.transform("programs", CSV_BYTES)


GOOD = ROWS[2]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=corrupted(GOOD, max_depth=0, max_fields=6))
def test_corrupted_rows_only_quarantine(row):
    out = oll.transform("courses", [row, GOOD])
    assert isinstance(out, TransformOutput)
    assert len(out.resources) + len(out.quarantined) in (1, 2)
    assert out.resources[-1].readable_id == "MITx+0.501x"


@settings(max_examples=40, deadline=None)
@given(payload=st.one_of(JUNK, st.binary(max_size=40)))
def test_wrong_shaped_payloads_raise_only_value_error(payload):
    try:
        out = oll.transform("courses", payload)
    except ValueError:
        return
    assert isinstance(out, TransformOutput)


def _http() -> SourceHttp:
    return SourceHttp(allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01)


async def test_extract_from_a_csv_url_with_retry(monkeypatch):
    monkeypatch.delenv("OLL_SHEETS_ID", raising=False)
    with FixtureServer() as server:
        server.route("/oll.csv", Response(200, CSV_BYTES, {"Content-Type": "text/csv"}))
        server.inject("/oll.csv", Response(500))
        async with _http() as http:
            ctx = ExtractContext(
                http=http,
                settings=get_settings(),
                options={"oll_csv_url": f"{server.base_url}/oll.csv"},
            )
            (page,) = [p async for p in oll.extract(ctx)]
        assert server.hits("/oll.csv") == 2
    assert (page.kind, page.item_count, page.body) == ("courses", 64, CSV_BYTES)


async def test_extract_defaults_to_the_bundled_csv(monkeypatch):
    for name in ("OLL_SHEETS_ID", "OLL_CSV_URL", "OLL_CSV_PATH"):
        monkeypatch.delenv(name, raising=False)
    async with _http() as http:
        ctx = ExtractContext(http=http, settings=get_settings(), options={})
        (page,) = [p async for p in oll.extract(ctx)]
    assert page.body == CSV_BYTES and page.url.startswith("file://")
    assert len(oll.transform(page.kind, page.body).resources) == 63
