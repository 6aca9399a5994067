"""MicroMasters: demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

from datetime import timedelta

from sources._demo import (
    FUTURE,
    DemoServer,
    Response,
    iso,
    subject,
)


def micromasters_catalog() -> list[dict]:
    return [
        {
            "id": p + 1,
            "title": f"MicroMasters Program in {subject(p)[2]}",
            "programpage_url": f"https://micromasters.mit.edu/demo{p}/",
            "thumbnail_url": f"https://micromasters.mit.edu/static/images/demo{p}.jpg",
            "courses": [
                {
                    "edx_key": f"MITx+{subject(p * 3 + c)[0]}.1x",
                    "position_in_program": c + 1,
                    "course_runs": [
                        {"edx_course_key": f"course-v1:MITx+{subject(p * 3 + c)[0]}.1x+1T2031"}
                    ],
                }
                for c in range(3)
            ],
            "instructors": [{"name": "John Tsitsiklis"}],
            "topics": [{"name": subject(p)[2]}],
            "total_price": "1500.00",
            "start_date": iso(FUTURE),
            "end_date": iso(FUTURE + timedelta(days=365)),
            "enrollment_start": iso(FUTURE - timedelta(days=30)),
        }
        for p in range(3)
    ]


def install_micromasters(server: DemoServer) -> dict[str, str]:
    server.route("/api/v0/catalog/", Response.json(micromasters_catalog()))
    return {"MICROMASTERS_CATALOG_API_URL": f"{server.base_url}/api/v0/catalog/"}


install = install_micromasters
