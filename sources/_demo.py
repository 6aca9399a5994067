"""What a source's demo payload generator (`sources/<name>_demo.py`) builds on.

A demo module defines `install(server) -> dict[str, str]`: it routes generated payloads, in the
shape the real API sends (field names as in MIT Learn's recorded fixtures), at the source's real
paths on `server` and returns the settings that point learnflow there. `learn up --demo` and the
tests serve them from `devstack`'s fixture server; nothing here does I/O. Dates sit in the 2030s
so events stay upcoming; generators are seeded, so two runs serve the same catalog.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json"})

    @classmethod
    def file(cls, path: Path, content_type: str = "application/json") -> Response:
        return cls(200, Path(path).read_bytes(), {"Content-Type": content_type})


Handler = Callable[[Request], Response]


class DemoServer(Protocol):
    """The part of a fake-upstream HTTP server a demo installs routes on."""

    @property
    def base_url(self) -> str: ...

    def route(self, path: str, handler: Handler | Response, method: str = "GET") -> None: ...


SUBJECTS = [
    ("18.03", "Differential Equations", "Mathematics", "Mathematics"),
    ("18.06", "Linear Algebra", "Mathematics", "Mathematics"),
    (
        "6.0001",
        "Introduction to Computer Science and Programming in Python",
        "Computer Science",
        "Electrical Engineering and Computer Science",
    ),
    (
        "6.86",
        "Machine Learning with Python",
        "Data Science",
        "Electrical Engineering and Computer Science",
    ),
    ("8.01", "Classical Mechanics", "Physics", "Physics"),
    ("7.00", "Introduction to Biology", "Biology", "Biology"),
    ("14.01", "Principles of Microeconomics", "Economics", "Economics"),
    (
        "15.S08",
        "Supply Chain Fundamentals",
        "Supply Chain Management",
        "Sloan School of Management",
    ),
    ("2.01", "Elements of Structures", "Mechanical Engineering", "Mechanical Engineering"),
    ("5.111", "Principles of Chemical Science", "Chemistry", "Chemistry"),
    ("18.650", "Fundamentals of Statistics", "Mathematics", "Mathematics"),
    (
        "16.00",
        "Introduction to Aerospace Engineering",
        "Aerospace Engineering",
        "Aeronautics and Astronautics",
    ),
]
LEVELS = ["Introductory", "Intermediate", "Advanced"]


# ----------------------------------------------------------------------------------------------
# The other sources. Each generator returns payloads in the shape the real API sends (field names
# as in MIT Learn's recorded fixtures); each `install_*` routes them at the source's real paths and
# returns the settings that point learnflow there. Dates sit in the 2030s so events stay upcoming.

FUTURE = datetime(2031, 3, 2, 14, 0, tzinfo=UTC)
TOKEN_PATH = "/oauth2/v1/access_token"  # noqa: S105 - a path, not a secret
DEMO_TOKEN = "demo-jwt"  # noqa: S105 - the fixture server's fake token


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def subject(i: int) -> tuple[str, str, str, str]:
    return SUBJECTS[i % len(SUBJECTS)]


def token_endpoint(server: DemoServer, path: str = TOKEN_PATH, ttl: int = 3600) -> None:
    """An OAuth2 client-credentials endpoint answering a JWT-style token (edX, Sloan)."""

    def handler(req: Request) -> Response:
        if b"grant_type=client_credentials" not in req.body:
            return Response.json({"error": "unsupported_grant_type"}, 400)
        return Response.json({"access_token": DEMO_TOKEN, "token_type": "JWT", "expires_in": ttl})

    server.route(path, handler, method="POST")


def requires_jwt(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    def guarded(req: Request) -> Response:
        if req.headers.get("authorization") != f"JWT {DEMO_TOKEN}":
            return Response.json({"detail": "Authentication credentials were not provided."}, 401)
        return handler(req)

    return guarded


def drf_pages(
    path: str, items: list[dict], page_size: int, base_url: Callable[[], str]
) -> Callable[[Request], Response]:
    """A DRF-style paginated endpoint (`?page=N`, absolute `next` links)."""

    def handler(req: Request) -> Response:
        page = int(req.q("page", "1") or 1)
        chunk = items[(page - 1) * page_size : page * page_size]
        nxt = (
            f"{base_url()}{path}?page={page + 1}&live=true"
            if page * page_size < len(items)
            else None
        )
        return Response.json({"count": len(items), "next": nxt, "previous": None, "results": chunk})

    return handler
