"""`learn load`'s line reader: what `learn transform` prints reads back; bad lines are kept aside
with their line number and a reason, and the rest of the page still loads."""

from __future__ import annotations

import json

from activities.load import read_page
from sources import get_source
from tests.conftest import TEST_JSON


def _transformed_lines() -> list[str]:
    payload = json.loads((TEST_JSON / "xpro_courses.json").read_bytes())
    out = get_source("xpro").transform_payload("courses", payload, [])
    assert out.resources
    return [r.model_dump_json() for r in out.resources]


def test_transform_output_reads_back_unchanged():
    lines = _transformed_lines()
    out = read_page("\n".join(lines).encode(), 1, "f.jsonl")
    assert [r.model_dump_json() for r in out.resources] == lines
    assert out.quarantined == []


def test_bad_lines_are_quarantined_with_their_numbers_and_the_rest_loads():
    good = _transformed_lines()[0]
    spaceship = {**json.loads(good), "resource_type": "spaceship"}
    no_title = {k: v for k, v in json.loads(good).items() if k != "title"}
    page = [
        "{not json",  # line 11
        good,  # 12
        "",  # 13 blank: skipped, still counted
        json.dumps(spaceship),  # 14
        "[1, 2]",  # 15
        json.dumps(no_title),  # 16
    ]
    raw = "\n".join(page).encode() + b"\n\xff\xfe"  # 17: not UTF-8
    out = read_page(raw, 11, "f.jsonl")
    assert len(out.resources) == 1
    reasons = {q.item_key: q.reason for q in out.quarantined}
    assert set(reasons) == {"f.jsonl:11", "f.jsonl:14", "f.jsonl:15", "f.jsonl:16", "f.jsonl:17"}
    assert reasons["f.jsonl:11"].startswith("line 11: invalid JSON")
    assert "resource_type" in reasons["f.jsonl:14"]
    assert "not a JSON object" in reasons["f.jsonl:15"]
    assert "title" in reasons["f.jsonl:16"] and "Field required" in reasons["f.jsonl:16"]
    assert "not UTF-8" in reasons["f.jsonl:17"]
    assert next(q for q in out.quarantined if q.item_key == "f.jsonl:11").raw == "{not json"


def test_a_repeated_resource_keeps_the_later_line():
    first = json.loads(_transformed_lines()[0])
    later = {**first, "title": "Retitled"}
    out = read_page(f"{json.dumps(first)}\n{json.dumps(later)}".encode(), 1, "f.jsonl")
    assert [r.title for r in out.resources] == ["Retitled"]
    assert [q.item_key for q in out.quarantined] == ["f.jsonl:1"]
    assert "superseded by line 2" in out.quarantined[0].reason
