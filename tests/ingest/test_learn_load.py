"""`learn load FILE.jsonl` end to end: the command (a separate process that finds the stack
through `--data-dir DIR/learnflow.env`) → LoadResourcesWorkflow on the session's workers → Postgres,
the keyword index and the vector store → found through gRPC SearchResources. Bad lines are
quarantined with their line number; the rest loads; a second load changes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from pathlib import Path

import grpc
import pytest

from learnflow.settings import get_settings
from search_service.pb import search_pb2, search_pb2_grpc
from sources import get_source
from tests.conftest import TEST_JSON
from tests.helpers.search import every_page

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.grpc]

REPO = Path(__file__).resolve().parents[2]


def _lines(tag: str) -> list[str]:
    """xPRO's recorded courses and programs as `learn transform` prints them, made unique to this
    test (readable ids and a title word) so the shared session catalog cannot answer for them."""
    out = []
    for kind, name in (("courses", "xpro_courses.json"), ("programs", "xpro_programs.json")):
        payload = json.loads((TEST_JSON / name).read_bytes())
        for r in get_source("xpro").transform_payload(kind, payload, []).resources:
            r = r.model_copy(
                update={"readable_id": f"{r.readable_id}-{tag}", "title": f"{r.title} {tag}"}
            )
            out.append(r.model_dump_json())
    return out


async def _learn(data_dir: Path, *args: str) -> tuple[int, str, str]:
    """The CLI in its own process, with nothing of this process's settings in its environment."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env["PYTHONPATH"] = str(REPO)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "learn_cli",
        "load",
        "--data-dir",
        str(data_dir),
        *args,
        cwd=str(data_dir),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
def stack_dir(app, tmp_path) -> Path:
    """An env file naming the session's stack, as `learn up --data-dir DIR` writes one."""
    s = get_settings()
    (tmp_path / "learnflow.env").write_text(
        f"TEMPORAL_ADDRESS={s.temporal_address}\nDATA_DIR={s.data_dir}\n"
        f"DATABASE_URL={s.database_url}\nGRPC_ADDRESS={app.grpc_address}\n"
    )
    return tmp_path


async def _search(address: str, text: str, mode) -> list[str]:
    """Every page of the answer: hybrid fuses the matches with the vector side's nearest
    resources, and on the catalog the suite shares, a weak match may rank below the first page."""
    request = search_pb2.SearchResourcesRequest(query=text, mode=mode, page_size=20)
    async with grpc.aio.insecure_channel(address) as channel:
        pages = await every_page(search_pb2_grpc.SearchServiceStub(channel), request)
    return [r.resource.readable_id for page in pages for r in page.results]


async def test_good_lines_load_and_are_found_bad_lines_are_quarantined(app, stack_dir):
    tag = f"zq{uuid.uuid4().hex[:8]}"
    good = _lines(tag)
    assert len(good) >= 3
    schema_error = json.dumps({**json.loads(good[0]), "resource_type": "spaceship"})
    lines = [good[0], "{not json", *good[1:], "", schema_error, '"just a string"']
    bad_numbers = [2, len(good) + 3, len(good) + 4]  # invalid JSON, schema error, not an object
    path = stack_dir / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n")

    code, out, err = await _learn(stack_dir, str(path), "--lines-per-page", "2")
    assert code == 0, err
    # The workflow's progress query answers while it runs (it runs for seconds: index, embed).
    progress = re.compile(r"^(starting|splitting|loading: page|indexing:|embedding:)")
    assert out.startswith("workflow load/") and any(map(progress.match, out.splitlines())), out
    for n in bad_numbers:
        assert f"quarantined corpus.jsonl line {n}: " in out
    summary = out.strip().splitlines()[-1]
    assert f"loaded {len(good)} " in summary and "quarantined 3 " in summary, out

    wanted = {json.loads(line)["readable_id"] for line in good}
    for mode in (search_pb2.SEARCH_MODE_KEYWORD, search_pb2.SEARCH_MODE_HYBRID):
        found = set(await _search(app.grpc_address, tag, mode))
        assert wanted <= found, (mode, found)
    async with app.stores.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT item_key, reason FROM quarantine WHERE source = 'load' AND item_key = ANY($1)",
            [f"corpus.jsonl:{n}" for n in bad_numbers],
        )
    reasons = {r["item_key"]: r["reason"] for r in rows}
    assert reasons[f"corpus.jsonl:{bad_numbers[0]}"].startswith(
        f"line {bad_numbers[0]}: invalid JSON"
    )
    assert "resource_type" in reasons[f"corpus.jsonl:{bad_numbers[1]}"]
    assert "not a JSON object" in reasons[f"corpus.jsonl:{bad_numbers[2]}"]

    # The same file again: every good line is unchanged, nothing is rewritten.
    code, out, err = await _learn(stack_dir, str(path), "--json")
    assert code == 0, err
    again = json.loads(out.strip().splitlines()[-1])
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, len(good)), again
    assert again["quarantined"] == 3 and [p["line"] for p in again["problems"]] == bad_numbers


async def test_a_missing_stack_is_an_error_not_a_traceback(tmp_path):
    code, _out, err = await _learn(tmp_path, str(tmp_path / "x.jsonl"))
    assert code == 1 and "learnflow.env" in err
