"""`learn load` activities: split a JSONL file into pages, and read one page into a batch.

Only the reading is new. A page's batch has the shape `transform_page` writes, so the ingestion
activities do the rest unchanged: `upsert_batch` loads it (quarantine included), `start_run` /
`finish_run` record the run, and the index and embed children bring the engines in line.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError
from temporalio import activity

from activities.ingest import put_batch
from activities.progress import Progress, heartbeat
from learnflow.contracts import (
    DEFAULT_QUEUE,
    LOAD_SOURCE,
    LineProblem,
    LoadPageInput,
    LoadPageResult,
    LoadResourcesInput,
    LoadSplitResult,
    PageRef,
)
from learnflow.models import (
    ContentFile,
    FeedItem,
    Quarantined,
    Resource,
    TransformOutput,
    ViewEvent,
)
from learnflow.stores import get_stores

log = structlog.get_logger(__name__)

# A page reports this many bad lines to the console; all of them are in the quarantine table.
PROBLEMS_PER_PAGE = 20
MAX_RAW_CHARS = 1_000_000


def page_key(load_id: str, n: int) -> str:
    return f"raw/{LOAD_SOURCE}/{load_id}/{n:05d}-jsonl"


@activity.defn
async def split_jsonl(req: LoadResourcesInput) -> LoadSplitResult:
    """Cut the file into pages of `lines_per_page` lines (blank lines included, so a page's line
    numbers follow from its position). Page keys are deterministic: a retry rewrites them."""
    stores = await get_stores()
    raw = await stores.blobs.get(req.file_key)
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":  # the newline that ends the last line starts no line
        lines.pop()
    per_page = max(1, req.lines_per_page)
    result = LoadSplitResult(lines=len(lines))
    for n, start in enumerate(range(0, len(lines), per_page)):
        chunk = lines[start : start + per_page]
        key = await stores.blobs.put(page_key(req.load_id, n), b"\n".join(chunk))
        result.pages.append(PageRef(kind="jsonl", key=key, item_count=len(chunk)))
        heartbeat(Progress(stage="split", counts={"pages": n + 1}))
    log.info("load.split", load_id=req.load_id, lines=result.lines, pages=len(result.pages))
    return result


# What a line is, told by a field only that model requires (`learn transform` prints all four).
_KINDS: list[tuple[str, type[BaseModel]]] = [
    ("readable_id", Resource),
    ("guid", FeedItem),
    ("event_uuid", ViewEvent),
    ("key", ContentFile),
]


def _validation_reason(model: type[BaseModel], exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    shown = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in errors[:3]
    )
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"not a valid {model.__name__}: {shown}{more}"


def read_line(text: str) -> BaseModel:
    """One line as the model `learn transform` printed it; ValueError says why it is not one."""
    try:
        obj: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"not a JSON object but {type(obj).__name__}")
    model = next((m for field, m in _KINDS if field in obj), Resource)
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise ValueError(_validation_reason(model, exc)) from None


def read_page(raw: bytes, first_line: int, file_name: str) -> TransformOutput:
    """A page of JSON lines as a transform's output: each bad line quarantined with its number."""
    out = TransformOutput()
    where: dict[str, int] = {}  # resource key -> index in out.resources
    line_of: dict[str, int] = {}
    for i, line in enumerate(raw.split(b"\n")):
        number = first_line + i
        if not line.strip():
            continue
        try:
            item = read_line(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            reason = f"line {number}: not UTF-8: {exc}"
        except ValueError as exc:
            reason = f"line {number}: {exc}"
        else:
            reason = ""
        if reason:
            out.quarantined.append(
                Quarantined(
                    source=LOAD_SOURCE,
                    item_key=f"{file_name}:{number}",
                    reason=reason[:2000],
                    raw=line.decode("utf-8", "replace")[:MAX_RAW_CHARS],
                )
            )
            continue
        if isinstance(item, Resource):
            # One upsert cannot write a key twice: the later line wins, the earlier is kept aside.
            if item.key in where:
                earlier = line_of[item.key]
                out.quarantined.append(
                    Quarantined(
                        source=LOAD_SOURCE,
                        item_key=f"{file_name}:{earlier}",
                        reason=f"line {earlier}: superseded by line {number} (same resource key)",
                        raw=out.resources[where[item.key]].model_dump_json()[:MAX_RAW_CHARS],
                    )
                )
                out.resources[where[item.key]] = item
            else:
                where[item.key] = len(out.resources)
                out.resources.append(item)
            line_of[item.key] = number
        elif isinstance(item, FeedItem):
            out.feed_items.append(item)
        elif isinstance(item, ViewEvent):
            out.view_events.append(item)
        else:
            out.content_files.append(item)
    return out


def problems_of(out: TransformOutput) -> list[LineProblem]:
    problems = []
    for q in out.quarantined[:PROBLEMS_PER_PAGE]:
        line = int((q.item_key or ":0").rsplit(":", 1)[1])
        problems.append(LineProblem(line=line, reason=q.reason))
    return sorted(problems, key=lambda p: p.line)


@activity.defn
async def read_jsonl_page(req: LoadPageInput) -> LoadPageResult:
    """Read one page of JSON lines and store it as an ingestion batch for `upsert_batch`."""
    stores = await get_stores()
    raw = await stores.blobs.get(req.page.key)
    out = read_page(raw, req.first_line, req.file_name)
    batch_key = req.page.key.replace("raw/", "batch/", 1) + ".json"
    # No page hash: loaded pages are never skipped, a load says "write this".
    await put_batch(stores, batch_key, out, None)
    return LoadPageResult(
        batch_key=batch_key,
        resources=len(out.resources),
        other_items=len(out.feed_items) + len(out.content_files) + len(out.view_events),
        quarantined=len(out.quarantined),
        problems=problems_of(out),
    )


ACTIVITIES_BY_QUEUE = {DEFAULT_QUEUE: [split_jsonl, read_jsonl_page]}
