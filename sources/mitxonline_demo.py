"""MITx Online demo payloads: a seeded catalog of courses and programs (DRF pages)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sources._demo import (
    LEVELS,
    SUBJECTS,
    DemoServer,
    Response,
    drf_pages,
)


def _course(i: int, rng: random.Random, now: datetime) -> dict:
    number, title, topic, dept = SUBJECTS[i % len(SUBJECTS)]
    part = i // len(SUBJECTS) + 1
    readable_id = f"course-v1:MITxT+{number}x.{part}"
    start = now + timedelta(days=rng.randint(-200, 200))
    runs = []
    for r in range(rng.randint(1, 3)):
        run_start = start - timedelta(days=120 * r)
        runs.append(
            {
                "title": f"{title} {part}" if part > 1 else title,
                "start_date": run_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end_date": (run_start + timedelta(weeks=12)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "enrollment_start": (run_start - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "enrollment_end": (run_start + timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "courseware_url": f"https://courses.example.edu/courses/{readable_id}+{r}T2026/course",
                "courseware_id": f"{readable_id}+{r}T2026",
                "is_enrollable": r == 0,
                "is_archived": r > 0,
                "is_self_paced": rng.random() < 0.3,
                "run_tag": f"{r}T2026",
                "id": i * 10 + r,
                "live": True,
                "course_number": f"{number}x",
                "products": [{"id": i * 10 + r, "price": "100.00", "is_active": True}],
                "enrollment_modes": [{"mode_slug": "verified"}, {"mode_slug": "audit"}],
            }
        )
    return {
        "id": 1000 + i,
        "title": f"{title} {part}" if part > 1 else title,
        "readable_id": readable_id,
        "departments": [{"name": dept}],
        "page": {
            "feature_image_src": f"/media/demo/{number}.png",
            "page_url": f"/courses/{readable_id}/",
            "description": f"<p>{title}: an MITx course on {topic.lower()} ({LEVELS[i % 3].lower()} level).</p>",
            "live": True,
            "length": f"{rng.randint(6, 14)} weeks",
            "effort": f"{rng.randint(3, 9)} hrs/wk",
            "instructors": [
                {
                    "name": rng.choice(
                        ["Ada Lovelace", "Gilbert Strang", "Walter Lewin", "Eric Lander"]
                    )
                }
            ],
        },
        "include_in_learn_catalog": True,
        "topics": [{"name": topic}],
        "min_price": 100,
        "max_price": 300,
        "certificate_type": "Certificate of Completion",
        "availability": "dated",
        "courseruns": runs,
        "enrollment_modes": [{"mode_slug": "verified"}, {"mode_slug": "audit"}],
    }


def mitxonline_catalog(n_courses: int = 36, seed: int = 7) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    courses = [_course(i, rng, now) for i in range(n_courses)]
    programs = []
    for p in range(max(1, n_courses // 12)):
        members = [c["id"] for c in courses[p * 12 : p * 12 + 4]]
        programs.append(
            {
                "id": 500 + p,
                "title": f"MicroMasters-style Program {p + 1} in {SUBJECTS[p % len(SUBJECTS)][2]}",
                "readable_id": f"program-v1:MITxT+P{p + 1}",
                "courses": members,
                "req_tree": [
                    {
                        "data": {"node_type": "operator", "operator": "all_of"},
                        "id": p,
                        "children": [
                            {"data": {"node_type": "course", "course": c}, "id": c} for c in members
                        ],
                    }
                ],
                "page": {
                    "page_url": f"/programs/program-v1:MITxT+P{p + 1}/",
                    "live": True,
                    "include_in_learn_catalog": True,
                    "description": "A demo program of related courses.",
                },
                "departments": [],
                "topics": [{"name": SUBJECTS[p % len(SUBJECTS)][2]}],
                "availability": "anytime",
                "certificate_type": "Certificate of Completion",
                "enrollment_modes": [{"mode_slug": "verified"}],
                "min_price": 500,
                "max_price": 1000,
            }
        )
    return courses, programs


def install_mitxonline(
    server: DemoServer, courses: list[dict], programs: list[dict], page_size: int = 20
) -> dict[str, str]:
    """Serve a MITx Online catalog at its real paths; returns the settings that point at it."""
    server.route(
        "/api/v2/courses/",
        drf_pages("/api/v2/courses/", courses, page_size, lambda: server.base_url),
    )
    server.route(
        "/api/v2/programs/",
        drf_pages("/api/v2/programs/", programs, page_size, lambda: server.base_url),
    )
    for course in courses:
        server.route(f"/api/v2/courses/{course['id']}/", Response.json(course))
    return {"MITX_ONLINE_BASE_URL": server.base_url}


def install(server: DemoServer) -> dict[str, str]:
    return install_mitxonline(server, *mitxonline_catalog())
