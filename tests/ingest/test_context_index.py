"""A worker keeps the course pages it transformed indexed by key (`IndexedPage`), by the sha256 the
fetch recorded: a programs page then reads none of them back from the blob store and parses none,
so a run's programs pages cost what their own programs need, not the catalog again each (edX,
MITx Online: quadratic before). With the pool on, the pages go as bytes (another process's
index). The programs page's output is the same either way.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from activities import cpu_pool, ingest_cpu
from activities.ingest import _read_page, _transformed
from learnflow.contracts import PageRef, TransformInput
from learnflow.settings import reset_settings
from sources import edx
from sources.base import IndexedPage
from sources.edx_demo import edx_catalog

NOW = datetime(2031, 1, 1, tzinfo=UTC)


class _Blobs:
    def __init__(self, blobs: dict[str, bytes]):
        self.blobs = blobs
        self.read: list[str] = []

    async def get(self, key: str) -> bytes:
        if key not in self.blobs:
            raise FileNotFoundError(key)
        self.read.append(key)
        return self.blobs[key]


class _Catalog:
    async def mark_page_seen(self, source: str, page_hash: str, run_id: str) -> None:
        return None  # never loaded before


class _Stores:
    def __init__(self, blobs: dict[str, bytes]):
        self.blobs = _Blobs(blobs)
        self.catalog = _Catalog()


@pytest.fixture
def inline(monkeypatch):
    monkeypatch.setenv("INGEST_CPU_WORKERS", "0")
    monkeypatch.setattr(edx, "clock", lambda: NOW)
    reset_settings()
    ingest_cpu.forget_indexed()
    yield
    ingest_cpu.forget_indexed()
    monkeypatch.delenv("INGEST_CPU_WORKERS", raising=False)
    reset_settings()


def _run(n_courses: int = 60, page_size: int = 20) -> tuple[dict[str, bytes], list[PageRef]]:
    """An edX run's stored pages: course pages, then one programs page."""
    courses, programs = edx_catalog(n_courses)
    bodies = [
        ("courses", {"results": courses[i : i + page_size]})
        for i in range(0, len(courses), page_size)
    ]
    bodies.append(("programs", {"results": programs}))
    blobs, refs = {}, []
    for n, (kind, payload) in enumerate(bodies):
        raw = json.dumps(payload).encode()
        key = f"raw/edx/run/{n:05d}-{kind}"
        blobs[key] = raw
        refs.append(PageRef(kind=kind, key=key, item_count=len(payload["results"]),
                            sha256=hashlib.sha256(raw).hexdigest()))  # fmt: skip
    return blobs, refs


def _load(page, req: TransformInput):
    return ingest_cpu.transform_to_load(*page.cpu_args(req))


def _request(refs: list[PageRef], page: PageRef) -> TransformInput:
    context = [r for r in refs if r.kind == "courses"] if page.kind == "programs" else []
    return TransformInput(source="edx", run_id="run", page=page, context=context)


def _output(load) -> str:
    return json.dumps([load.rows, sorted(map(str, load.documents.items()))], default=str)


async def _fresh_output(blobs: dict[str, bytes], refs: list[PageRef], page: PageRef):
    """What a process holding no course page gives for `page` (it then holds none again)."""
    load = _load(await _read_page(_Stores(blobs), _request(refs, page)), _request(refs, page))
    ingest_cpu.forget_indexed()
    return load


async def _transform_course_pages(stores: _Stores, refs: list[PageRef]) -> None:
    """The run's course pages, as load_page (or the pool process) transforms them."""
    for ref in refs[:-1]:
        _load(await _read_page(stores, _request(refs, ref)), _request(refs, ref))


async def test_a_programs_page_reads_no_course_page_the_worker_transformed(inline):
    blobs, refs = _run()
    programs = refs[-1]
    # before any course page was transformed here: every course page is read and parsed
    cold_stores = _Stores(blobs)
    cold = await _read_page(cold_stores, _request(refs, programs))
    assert all(isinstance(c, bytes) for c in cold.context_raw)
    assert len(cold_stores.blobs.read) == len(refs)
    expected = _load(cold, _request(refs, programs))
    assert expected.rows
    ingest_cpu.forget_indexed()

    stores = _Stores(blobs)
    for ref in refs[:-1]:  # the run's course pages, as load_page transforms them
        _load(await _read_page(stores, _request(refs, ref)), _request(refs, ref))
    stores.blobs.read.clear()
    page = await _read_page(stores, _request(refs, programs))
    assert stores.blobs.read == [programs.key]  # its own bytes only
    assert all(isinstance(c, IndexedPage) for c in page.context_raw)
    assert _output(_load(page, _request(refs, programs))) == _output(expected)


async def test_course_pages_first_read_as_context_are_indexed_for_the_next_programs_page(inline):
    blobs, refs = _run()
    programs = refs[-1]
    stores = _Stores(blobs)
    first = _load(await _read_page(stores, _request(refs, programs)), _request(refs, programs))
    stores.blobs.read.clear()
    again = await _read_page(stores, _request(refs, programs))
    assert stores.blobs.read == [programs.key]
    assert _output(_load(again, _request(refs, programs))) == _output(first)


async def test_with_the_pool_the_context_pages_go_by_digest_and_as_bytes_when_not_held(
    inline, monkeypatch
):
    """With the pool on, a programs page's course pages go by their digests (`HeldContext`),
    unread: the pool process that transformed them holds them. A process that does not (another
    of the pool, a restarted one) says so (`ContextNotHeld`) and gets their bytes: the same
    output either way."""
    blobs, refs = _run()
    programs = refs[-1]
    expected = await _fresh_output(blobs, refs, programs)
    stores = _Stores(blobs)
    await _transform_course_pages(stores, refs)
    monkeypatch.setattr(cpu_pool, "pooled", lambda: True)
    monkeypatch.setattr(cpu_pool, "run_cpu", _inline_run_cpu)
    stores.blobs.read.clear()
    page = await _read_page(stores, _request(refs, programs))
    assert all(isinstance(c, ingest_cpu.HeldContext) for c in page.context_raw)
    held = await _transformed(stores, ingest_cpu.transform_to_load, page, _request(refs, programs))
    assert stores.blobs.read == [programs.key]  # no course page read
    assert _output(held) == _output(expected)

    ingest_cpu.forget_indexed()  # a process that holds none of them
    stores.blobs.read.clear()
    page = await _read_page(stores, _request(refs, programs))
    fresh = await _transformed(stores, ingest_cpu.transform_to_load, page, _request(refs, programs))
    assert stores.blobs.read == [programs.key] + [r.key for r in refs[:-1]]  # then the courses
    assert _output(fresh) == _output(expected)


async def _inline_run_cpu(fn, *args):
    """`cpu_pool.run_cpu` in this process (what a pool process runs, exceptions included)."""
    return fn(*args)


def test_the_indexed_pages_kept_are_bounded(inline, monkeypatch):
    blobs, refs = _run(n_courses=60, page_size=20)
    courses = [r for r in refs if r.kind == "courses"]
    one_page = edx.index_context(json.loads(blobs[courses[0].key])).size
    monkeypatch.setattr(ingest_cpu, "INDEXED_BYTES_KEPT", one_page * 2)
    for ref in courses:
        ingest_cpu._transform("edx", "courses", ref.key, blobs[ref.key], [], b"", ref.sha256)
    held = [ingest_cpu.indexed_context("edx", "courses", r.sha256) for r in courses]
    assert held[0] is None and held[-1] is not None  # the least recently used went first


def test_a_process_that_holds_a_context_page_does_not_parse_its_bytes_again(inline, monkeypatch):
    """A pool process gets the bytes (its worker cannot know what it holds): it reads its own."""
    blobs, refs = _run()
    courses = [r for r in refs if r.kind == "courses"]
    for ref in courses:
        ingest_cpu._transform("edx", "courses", ref.key, blobs[ref.key], [], b"", ref.sha256)
    parsed: list[bytes] = []
    decode = ingest_cpu.decode_page
    monkeypatch.setattr(ingest_cpu, "decode_page", lambda raw: parsed.append(raw) or decode(raw))
    programs = refs[-1]
    ingest_cpu._transform(
        "edx", "programs", programs.key, blobs[programs.key], [blobs[r.key] for r in courses],
        b"", programs.sha256, [r.kind for r in courses], [r.sha256 for r in courses],
    )  # fmt: skip
    assert parsed == [blobs[programs.key]]


def _counting_course_transforms(monkeypatch) -> list[str]:
    transformed: list[str] = []
    transform_course = edx.transform_course

    def counting(course, now=None):
        transformed.append(course.get("key") if isinstance(course, dict) else repr(course))
        return transform_course(course, now)

    monkeypatch.setattr(edx, "transform_course", counting)
    return transformed


async def test_a_programs_page_takes_the_courses_the_worker_transformed_as_they_were(
    inline, monkeypatch
):
    """A course page transformed here leaves what a program reads from each course
    (`edx.ProgramMember`) with the page it holds: the programs page transforms none of its
    courses again, and its output is the one a fresh process gives."""
    blobs, refs = _run()
    programs = refs[-1]
    expected = await _fresh_output(blobs, refs, programs)
    stores = _Stores(blobs)
    await _transform_course_pages(stores, refs)
    held = [ingest_cpu.indexed_context("edx", "courses", r.sha256) for r in refs[:-1]]
    members = [m for page in held for m in page.derived.values()]
    keys = {c["key"] for r in refs[:-1] for c in json.loads(blobs[r.key])["results"]}
    assert len(members) == len(keys) and any(isinstance(m, edx.ProgramMember) for m in members)
    assert all(isinstance(m, edx.ProgramMember) or m is None for m in members)  # None: unpublished
    transformed = _counting_course_transforms(monkeypatch)
    page = await _read_page(stores, _request(refs, programs))
    assert _output(_load(page, _request(refs, programs))) == _output(expected)
    assert transformed == []


async def test_a_course_whose_run_dates_the_clock_crossed_is_transformed_again(inline, monkeypatch):
    """A member holds at another clock reading only when none of its runs' dates lies between
    the two (the best run is chosen by its dates against now): the others are transformed
    again at the programs page's clock, and the output is what that clock gives throughout."""
    blobs, refs = _run()
    programs = refs[-1]
    later_clock = datetime(2030, 6, 1, tzinfo=UTC)  # the demo catalog's runs span 2029-2031
    stores = _Stores(blobs)
    await _transform_course_pages(stores, refs)  # at NOW
    monkeypatch.setattr(edx, "clock", lambda: later_clock)
    transformed = _counting_course_transforms(monkeypatch)
    page = await _read_page(stores, _request(refs, programs))
    crossed = _load(page, _request(refs, programs))
    wanted = edx._program_course_keys(json.loads(blobs[programs.key])["results"])
    assert 0 < len(set(transformed)) < len(wanted)  # some members held, some did not
    ingest_cpu.forget_indexed()
    assert _output(crossed) == _output(await _fresh_output(blobs, refs, programs))
