"""MIT Climate (JSON article lists): demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

from sources._demo import (
    DemoServer,
    Response,
)


def climate_articles(kind: str, n: int = 4) -> list[dict]:
    return [
        {
            "uuid": f"40000000-{kind[:4]}-4000-8000-{i:012d}",
            "title": f"{'How does' if kind == 'explainers' else 'Ask:'} climate topic {i + 1} work?",
            "url": f"/{kind}/demo-{i}",
            "image_src": f"/sites/default/files/{kind}-{i}.jpg",
            "image_alt": "A wind farm",
            "summary": "<p>Carbon, energy and what to do about them.</p>",
            "footnotes": "<p>1. MIT Energy Initiative</p>",
            "byline": "By Jane Doe",
            "topics": "Energy|Climate%20Science",
            "created": f"2030-10-0{i + 1}T12:00:00",
        }
        for i in range(n)
    ]


def install_mit_climate(server: DemoServer) -> dict[str, str]:
    server.route("/feeds/explainers", Response.json(climate_articles("explainers")))
    server.route("/feeds/ask-mit-climate", Response.json(climate_articles("ask-mit-climate")))
    return {
        "MIT_CLIMATE_BASE_URL": server.base_url,
        "MIT_CLIMATE_EXPLAINERS_API_URL": f"{server.base_url}/feeds/explainers",
        "ASK_MIT_CLIMATE_API_URL": f"{server.base_url}/feeds/ask-mit-climate",
    }


install = install_mit_climate
