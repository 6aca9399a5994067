"""Every endpoint over real HTTP against a real Temporal dev server (no worker: a started
workflow simply stays open, which is enough to count and describe it)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from devstack.harness.process import free_port as _free_port
from webhook_service.config import WebhookConfig
from webhook_service.starter import LazyTemporalStarter

from .conftest import (
    NEW_KEY,
    NEW_SECRET,
    OCW_KEY,
    OLD_SECRET,
    OVS_INLINE_MAX,
    REMOVED_SECRET,
    Running,
    base_config,
    count_runs,
    dumps,
    ovs_video,
    sign_mitlearn,
    sign_standard,
    start_server,
)

pytestmark = [pytest.mark.webhooks, pytest.mark.temporal]

CONTENT = "/api/v1/webhooks/content_files/"
DELETE = "/api/v1/webhooks/content_files/delete/"
OVS = "/api/v1/webhooks/ovs_videos/"
OCW = "/api/v1/ocw_next_webhook/"


def content_payload(source: str = "mit_edx") -> dict:
    tag = uuid.uuid4().hex[:12]
    return {
        "source": source,
        "content_path": f"20260101/{tag}/course-v1_MITx+6.00x+{tag}.tar.gz",
        "course_id": f"course-v1:MITx+6.00x+{tag}",
        "course_readable_id": f"MITx+6.00x+{tag}",
    }


async def started_input(client: Client, workflow_id: str) -> dict:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    attrs = history.events[0].workflow_execution_started_event_attributes
    return json.loads(attrs.input.payloads[0].data)


async def assert_started(
    client: Client, workflow_id: str, workflow_type: str, task_queue: str
) -> str:
    desc = await client.get_workflow_handle(workflow_id).describe()
    assert desc.workflow_type == workflow_type
    assert desc.task_queue == task_queue
    assert desc.status == WorkflowExecutionStatus.RUNNING
    assert await count_runs(client, workflow_id, 1) == 1
    return desc.run_id


async def assert_not_started(client: Client, workflow_id: str) -> None:
    with pytest.raises(RPCError) as info:
        await client.get_workflow_handle(workflow_id).describe()
    assert info.value.status == RPCStatusCode.NOT_FOUND


# ---------------- happy paths ----------------


async def test_content_files_starts_ingest_archive(http, service: Running, tclient: Client):
    payload = content_payload("mitxonline")
    body = dumps(payload)
    before = len(service.starter.calls)
    r = await http.post(CONTENT, content=body, headers=sign_mitlearn(body))
    assert r.status_code == 202, r.text
    wid = r.json()["workflow_id"]
    assert r.json()["status"] == "accepted"
    assert wid == f"webhook/content_files/mitxonline/{payload['content_path']}"
    assert len(service.starter.calls) == before + 1
    await assert_started(tclient, wid, "IngestArchiveWorkflow", "edx_content")
    assert await started_input(tclient, wid) == {
        "source": "mitxonline",
        "content_path": payload["content_path"],
        "run_id": payload["course_readable_id"],
        "overwrite": False,
    }


async def test_canvas_content_files_with_standard_webhooks(http, tclient: Client):
    payload = content_payload("canvas")
    del payload["course_readable_id"]
    body = dumps(payload)
    r = await http.post(CONTENT, content=body, headers=sign_standard(body))
    assert r.status_code == 202, r.text
    wid = r.json()["workflow_id"]
    await assert_started(tclient, wid, "IngestArchiveWorkflow", "edx_content")
    arg = await started_input(tclient, wid)
    assert arg["source"] == "canvas" and arg["run_id"] == payload["course_id"]


async def test_content_files_delete_starts_delete_workflow(http, tclient: Client):
    course_id = f"course-v1:xPRO+{uuid.uuid4().hex[:8]}"
    body = dumps({"source": "xpro", "course_id": course_id})
    r = await http.post(DELETE, content=body, headers=sign_mitlearn(body))
    assert r.status_code == 202, r.text
    wid = r.json()["workflow_id"]
    assert wid == f"webhook/content_files_delete/xpro/{course_id}"
    await assert_started(tclient, wid, "DeleteCourseContentWorkflow", "default")
    assert await started_input(tclient, wid) == {"source": "xpro", "course_id": course_id}


async def test_ovs_video_starts_ingest_with_validated_dict(http, tclient: Client):
    key = f"vid-{uuid.uuid4().hex}"
    video = ovs_video(key)
    video["unexpected_big_field"] = "x" * 100  # dropped by validation, never forwarded
    body = dumps(video)
    r = await http.post(OVS, content=body, headers=sign_standard(body))
    assert r.status_code == 202, r.text
    wid = r.json()["workflow_id"]
    assert wid.startswith(f"webhook/ovs_videos/{key}/")
    await assert_started(tclient, wid, "IngestOvsVideoWorkflow", "default")
    arg = await started_input(tclient, wid)
    assert arg["key"] == key
    assert arg["video"]["collection"]["key"] == video["collection"]["key"]
    assert "unexpected_big_field" not in arg["video"]


async def test_ovs_delete_starts_delete_workflow(http, tclient: Client):
    key = f"vid-{uuid.uuid4().hex}"
    body = dumps({"video_id": key, "delete": True})
    r = await http.post(OVS, content=body, headers=sign_mitlearn(body))
    assert r.status_code == 202, r.text
    await assert_started(tclient, r.json()["workflow_id"], "DeleteOvsVideoWorkflow", "default")


async def test_ocw_publish_starts_ingest_ocw(http, tclient: Client):
    tag = uuid.uuid4().hex[:8]
    prefixes = [f"courses/{tag}-b/", f"courses/{tag}-a/"]
    body = dumps({"webhook_key": OCW_KEY, "version": "live", "prefixes": ",".join(prefixes)})
    r = await http.post(OCW, content=body)
    assert r.status_code == 202, r.text
    wid = r.json()["workflow_id"]
    await assert_started(tclient, wid, "IngestOcwWorkflow", "edx_content")
    arg = await started_input(tclient, wid)
    assert arg["source"] == "ocw"
    assert arg["options"] == {"prefixes": ",".join(sorted(prefixes))}


async def test_ocw_unpublish_and_draft_and_bad_key(http, service: Running, tclient: Client):
    uid = uuid.uuid4().hex
    body = dumps({"webhook_key": OCW_KEY, "version": "live", "site_uid": uid, "unpublished": True})
    r = await http.post(OCW, content=body)
    assert r.status_code == 202, r.text
    await assert_started(tclient, r.json()["workflow_id"], "UnpublishOcwCourseWorkflow", "default")

    before = len(service.starter.calls)
    draft = dumps({"webhook_key": OCW_KEY, "version": "draft", "prefix": "courses/x/"})
    r = await http.post(OCW, content=draft)
    assert r.status_code == 200 and r.json()["status"] == "ignored"
    wrong = dumps({"webhook_key": OCW_KEY + "x", "version": "live", "prefix": "courses/x/"})
    assert (await http.post(OCW, content=wrong)).status_code == 403
    missing = dumps({"version": "live", "prefix": "courses/x/"})
    assert (await http.post(OCW, content=missing)).status_code == 401
    no_action = dumps({"webhook_key": OCW_KEY, "version": "live"})
    r = await http.post(OCW, content=no_action)
    assert r.status_code == 400 and "no action" in r.json()["detail"]
    assert len(service.starter.calls) == before


# ---------------- duplicates and replays ----------------


async def test_duplicate_delivery_starts_one_workflow(http, service: Running, tclient: Client):
    body = dumps(content_payload())
    first = await http.post(CONTENT, content=body, headers=sign_mitlearn(body))
    assert first.status_code == 202
    wid = first.json()["workflow_id"]
    run_id = await assert_started(tclient, wid, "IngestArchiveWorkflow", "edx_content")
    # The MIT Learn scheme has no delivery id: the deterministic id + USE_EXISTING dedupe it.
    second = await http.post(CONTENT, content=body, headers=sign_mitlearn(body))
    assert second.status_code == 202 and second.json() == first.json()
    desc = await tclient.get_workflow_handle(wid).describe()
    assert desc.run_id == run_id
    assert await count_runs(tclient, wid, 1) == 1


async def test_replayed_webhook_id_answered_idempotently(http, service: Running, tclient: Client):
    body = dumps(content_payload("oll"))
    headers = sign_standard(body, webhook_id=f"msg_{uuid.uuid4().hex}")
    first = await http.post(CONTENT, content=body, headers=headers)
    assert first.status_code == 202
    calls = len(service.starter.calls)
    replay = await http.post(CONTENT, content=body, headers=headers)
    assert replay.status_code == 202 and replay.json() == first.json()
    assert len(service.starter.calls) == calls  # answered from the delivery cache
    assert await count_runs(tclient, first.json()["workflow_id"], 1) == 1

    # Same id, different (validly signed) body: refused, nothing started.
    other = dumps(content_payload("oll"))
    reused = sign_standard(other, webhook_id=headers["webhook-id"])
    r = await http.post(CONTENT, content=other, headers=reused)
    assert r.status_code == 409
    assert len(service.starter.calls) == calls


async def test_stale_and_future_timestamps_are_401(http, service: Running, tclient: Client):
    payload = content_payload()
    body = dumps(payload)
    before = len(service.starter.calls)
    now = int(time.time())
    for ts, reason in ((now - 301, "too old"), (now + 301, "future")):
        r = await http.post(CONTENT, content=body, headers=sign_standard(body, timestamp=ts))
        assert r.status_code == 401 and reason in r.json()["detail"]
    # A captured delivery replayed later (its signature is valid, its timestamp stale).
    captured = sign_standard(body, timestamp=now - 3600)
    assert (await http.post(CONTENT, content=body, headers=captured)).status_code == 401
    malformed = {**sign_standard(body), "webhook-timestamp": "12.5"}
    assert (await http.post(CONTENT, content=body, headers=malformed)).status_code == 401
    assert len(service.starter.calls) == before
    await assert_not_started(tclient, f"webhook/content_files/mit_edx/{payload['content_path']}")


# ---------------- refused input ----------------


async def test_missing_and_wrong_signatures(http, service: Running, tclient: Client):
    payload = content_payload()
    body = dumps(payload)
    before = len(service.starter.calls)
    r = await http.post(CONTENT, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    r = await http.post(CONTENT, content=body, headers=sign_mitlearn(body, REMOVED_SECRET))
    assert r.status_code == 403
    r = await http.post(CONTENT, content=body, headers=sign_mitlearn(body + b" "))
    assert r.status_code == 403  # signature of other bytes
    r = await http.post(CONTENT, content=body, headers=sign_standard(body, keys=[b"nope"]))
    assert r.status_code == 403
    bad = {**sign_standard(body), "webhook-signature": "v2,abc v1a,xyz"}
    assert (await http.post(CONTENT, content=body, headers=bad)).status_code == 403
    assert len(service.starter.calls) == before
    await assert_not_started(tclient, f"webhook/content_files/mit_edx/{payload['content_path']}")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty body"),
        (b"[1, 2]", "JSON object"),
        (b'{"source": NaN}', "not valid JSON"),
        (b'{"source": "mit_edx"}', "content_path"),
        (b'{"content_path": "a.tar.gz"}', "source"),
        (b'{"source": "mit_edx", "content_path": 5}', "content_path"),
        (b'{"source": "nope", "content_path": "a.tar.gz"}', "unknown source"),
        (b'{"source": "podcast", "content_path": "a.tar.gz"}', "does not send"),
        (b'{"source": "mit_edx", "content_path": "../etc/passwd"}', "content_path"),
    ],
)
async def test_bad_bodies_are_400(http, service: Running, body: bytes, fragment: str):
    before = len(service.starter.calls)
    r = await http.post(CONTENT, content=body, headers=sign_mitlearn(body))
    assert r.status_code == 400, r.text
    assert fragment in r.text
    assert len(service.starter.calls) == before


async def test_delete_requires_fields(http, service: Running):
    body = dumps({"source": "mit_edx", "course_id": "   "})
    r = await http.post(DELETE, content=body, headers=sign_mitlearn(body))
    assert r.status_code == 400 and "blank" in r.text
    body = dumps({"source": "mit_edx"})
    r = await http.post(DELETE, content=body, headers=sign_mitlearn(body))
    assert r.status_code == 400 and r.json()["errors"][0]["loc"] == ["course_id"]


async def test_oversized_bodies_are_413(http, service: Running):
    before = len(service.starter.calls)
    big = dumps({**content_payload(), "pad": "x" * service.config.max_body_bytes})
    r = await http.post(CONTENT, content=big, headers=sign_mitlearn(big))
    assert r.status_code == 413

    # No Content-Length (chunked): the server stops reading at the cap.
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"pad": "'
        for _ in range(service.config.max_body_bytes // 8192 + 2):
            yield b"x" * 8192
        yield b'"}'

    r = await http.post(CONTENT, content=chunks(), headers=sign_mitlearn(b"irrelevant"))
    assert r.status_code == 413
    assert "content-length" not in r.request.headers

    # Under the body cap but too big to hand to a workflow inline.
    video = ovs_video(f"big-{uuid.uuid4().hex}")
    video["description"] = "d" * 19_000
    video["videosubtitle_set"] = [
        {"s3_object_key": f"subtitles/k/{'s' * 900}_{i}.vtt", "language": f"l{i}"}
        for i in range(10)
    ]
    body = dumps(video)
    assert len(body) < service.config.max_body_bytes and len(body) > OVS_INLINE_MAX
    r = await http.post(OVS, content=body, headers=sign_mitlearn(body))
    assert r.status_code == 413 and "workflow" in r.json()["detail"]
    assert len(service.starter.calls) == before


HOST = "du3yhovcx8dht.cloudfront.net"


def _src(url: str):
    return lambda v: v["sources"][0].update(src=url)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda v: v.update(key="bad key!"), "key"),
        (lambda v: v.update(key="a" * 256), "key"),
        (lambda v: v.update(key="../../x"), "key"),
        (lambda v: v["collection"].update(key="c/../d"), "collection"),
        (_src("https://evil.example.com/v.m3u8"), "not allowed"),
        (_src(f"http://{HOST}/v.m3u8"), "https"),
        (_src(f"https://u:p@{HOST}/v"), "userinfo"),
        (_src(f"https://{HOST}\\@evil.com/"), "backslash"),
        (_src(f"https://{HOST}:8443/v"), "port"),
        (
            lambda v: v["videothumbnail_set"][0].update(cloudfront_url="https://169.254.169.254/"),
            "not allowed",
        ),
        (
            lambda v: v["videosubtitle_set"][0].update(s3_object_key="https://evil.com/x.vtt"),
            "s3_object_key",
        ),
        (lambda v: v.pop("title"), "title"),
    ],
)
async def test_bad_ovs_videos_are_400(http, service: Running, mutate, fragment: str):
    video = ovs_video(f"ok-{uuid.uuid4().hex}")
    mutate(video)
    body = dumps(video)
    before = len(service.starter.calls)
    r = await http.post(OVS, content=body, headers=sign_standard(body))
    assert r.status_code == 400, r.text
    assert fragment in r.text
    assert len(service.starter.calls) == before


async def test_ovs_delete_with_bad_key_is_400(http, service: Running):
    body = dumps({"video_id": "x/../../y", "delete": True})
    r = await http.post(OVS, content=body, headers=sign_mitlearn(body))
    assert r.status_code == 400 and "video_id" in r.text


# ---------------- rotation, schemes, availability, plumbing ----------------


async def test_secret_rotation(temporal_dev, tclient: Client):
    """Both secrets accepted while rotating (either scheme); once the old one is removed it is
    refused and the new one still works."""
    rotating = start_server(base_config(), LazyTemporalStarter(temporal_dev.address))
    rotated = start_server(
        base_config(secrets=(NEW_SECRET,)), LazyTemporalStarter(temporal_dev.address)
    )
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for url in (rotating.url,):
                for headers_for in (
                    lambda b: sign_mitlearn(b, OLD_SECRET),
                    lambda b: sign_mitlearn(b, NEW_SECRET),
                    lambda b: sign_standard(b, keys=[OLD_SECRET.encode()]),
                    lambda b: sign_standard(b, keys=[NEW_KEY]),
                    # a sender signing with both keys at once (space-separated v1 entries)
                    lambda b: sign_standard(b, keys=[b"unknown", NEW_KEY]),
                ):
                    body = dumps(content_payload())
                    r = await http.post(url + CONTENT, content=body, headers=headers_for(body))
                    assert r.status_code == 202, r.text
            body = dumps(content_payload())
            r = await http.post(rotated.url + CONTENT, content=body, headers=sign_mitlearn(body))
            assert r.status_code == 403
            old_std = sign_standard(body, keys=[OLD_SECRET.encode()])
            r = await http.post(rotated.url + CONTENT, content=body, headers=old_std)
            assert r.status_code == 403
            r = await http.post(rotated.url + CONTENT, content=body, headers=sign_standard(body))
            assert r.status_code == 202
        assert rotated.starter.calls and len(rotating.starter.calls) == 5
    finally:
        rotating.server.stop()
        rotated.server.stop()


async def test_mitlearn_scheme_can_be_switched_off(temporal_dev):
    running = start_server(
        base_config(schemes=frozenset({"standard"})), LazyTemporalStarter(temporal_dev.address)
    )
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            body = dumps(content_payload())
            r = await http.post(CONTENT, content=body, headers=sign_mitlearn(body))
            assert r.status_code == 401 and "not accepted" in r.json()["detail"]
            r = await http.post(CONTENT, content=body, headers=sign_standard(body))
            assert r.status_code == 202
    finally:
        running.server.stop()


async def test_temporal_unavailable_is_503():
    dead = LazyTemporalStarter(f"127.0.0.1:{_free_port()}", connect_timeout=5)
    running = start_server(base_config(), dead)
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            body = dumps(content_payload())
            r = await http.post(CONTENT, content=body, headers=sign_mitlearn(body))
            assert r.status_code == 503
            assert r.headers["retry-after"]
    finally:
        running.server.stop()


async def test_plumbing_endpoints(http):
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    doc = (await http.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) >= {CONTENT, DELETE, OVS, OCW, "/api/v1/program_certificates/"}
    r = await http.get(CONTENT)
    assert r.status_code == 405 and r.json()["status"] == "error"
    r = await http.post("/api/v1/webhooks/nope/", content=b"{}")
    assert r.status_code == 404 and r.json()["status"] == "error"


def test_empty_secrets_refused():
    from webhook_service.app import create_app

    with pytest.raises(ValueError, match="secret"):
        create_app(WebhookConfig(secrets=()), LazyTemporalStarter("127.0.0.1:1"))


async def test_temporal_going_down_after_connect_is_503():
    """Connected, then the server stops: the next delivery is a 503 (sender retries), and once
    Temporal is back the same delivery is accepted."""
    from datetime import timedelta

    from devstack.harness.temporal import DevServer

    try:
        dev = DevServer().start()
    except Exception as exc:
        from .conftest import unavailable

        unavailable("temporal dev server", exc)
    starter = LazyTemporalStarter(dev.address, start_timeout=timedelta(seconds=2))
    running = start_server(base_config(), starter)
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            body = dumps(content_payload())
            assert (
                await http.post(CONTENT, content=body, headers=sign_mitlearn(body))
            ).status_code == 202
            dev.stop(kill=True)
            body = dumps(content_payload())
            r = await http.post(CONTENT, content=body, headers=sign_mitlearn(body))
            assert r.status_code == 503, r.text
            dev.start()  # same ports
            r = await http.post(CONTENT, content=body, headers=sign_mitlearn(body))
            assert r.status_code == 202, r.text
    finally:
        running.server.stop()
        dev.stop()


async def test_real_server_fault_is_500_json():
    class Broken:
        async def start(self, workflow, arg, workflow_id, task_queue) -> str:
            raise RuntimeError("bug")

    running = start_server(base_config(), Broken())
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            body = dumps(content_payload())
            r = await http.post(CONTENT, content=body, headers=sign_mitlearn(body))
            assert r.status_code == 500
            assert r.json() == {
                "status": "error",
                "error": "server_error",
                "detail": "internal error",
                "errors": [],
            }
    finally:
        running.server.stop()
