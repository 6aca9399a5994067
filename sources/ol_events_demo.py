"""MIT Open Learning events (Drupal JSON:API): demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

from datetime import timedelta

from sources._demo import (
    FUTURE,
    DemoServer,
    Response,
)


def ol_events_page(base_url: str, n_events: int = 5) -> dict:
    data = []
    for i in range(n_events):
        start = FUTURE + timedelta(days=5 * i)
        data.append(
            {
                "type": "node--event",
                "id": f"30000000-0000-4000-8000-{i:012d}",
                "attributes": {
                    "title": f"Open Learning talk {i + 1}",
                    "status": True,
                    "path": {"alias": f"/events/demo-talk-{i + 1}"},
                    "body": {"value": "<p>A talk about <b>learning</b>.</p>"},
                    "field_event_date": {
                        "value": start.isoformat(),
                        "end_value": (start + timedelta(hours=1)).isoformat(),
                    },
                },
                "relationships": {},
            }
        )
    return {
        "jsonapi": {"version": "1.0"},
        "data": data,
        "links": {"self": {"href": f"{base_url}/jsonapi/node/event"}},
    }


def install_ol_events(server: DemoServer) -> dict[str, str]:
    server.route("/jsonapi/node/event", lambda _r: Response.json(ol_events_page(server.base_url)))
    return {"OL_EVENTS_BASE_URL": server.base_url}


install = install_ol_events
