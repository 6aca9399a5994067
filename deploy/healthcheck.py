"""Container health checks for learnflow's own services (docker-compose `healthcheck`).

    python deploy/healthcheck.py grpc 127.0.0.1:50051     # grpc.health.v1 says SERVING
    python deploy/healthcheck.py http http://127.0.0.1:9464/metrics   # answers 2xx

Exit 0 when healthy, 1 otherwise; stdlib + grpcio only, a 3 s budget.
"""

from __future__ import annotations

import sys
import urllib.request


def grpc_serving(address: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=3
        )
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def http_ok(url: str) -> bool:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (scheme checked)
        return 200 <= response.status < 300


def main(argv: list[str]) -> int:
    kind, target = argv
    try:
        ok = grpc_serving(target) if kind == "grpc" else http_ok(target)
    except Exception as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
