"""edX catalog (discovery API, MIT owners): demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

import random
from datetime import timedelta

from sources._demo import (
    FUTURE,
    LEVELS,
    SUBJECTS,
    TOKEN_PATH,
    DemoServer,
    drf_pages,
    iso,
    requires_jwt,
    subject,
    token_endpoint,
)


def edx_catalog(n_courses: int = 24, seed: int = 11) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    courses = []
    for i in range(n_courses):
        number, title, topic, _dept = subject(i)
        part = i // len(SUBJECTS) + 1
        key = f"MITx+{number}.{part}x"
        start = FUTURE + timedelta(days=rng.randint(-400, 200))
        runs = [
            {
                "key": f"course-v1:{key}+{r + 1}T2031",
                "uuid": f"run-{i:06d}-{r}",
                "title": title,
                "short_description": f"<p>{title}, part {part}.</p>",
                "marketing_url": f"https://www.edx.org/course/{key.lower().replace('+', '-')}",
                "image": {"src": f"https://prod-discovery.edx-cdn.org/media/course/{i}.jpg"},
                "seats": [
                    {"type": "verified", "price": "150.00", "currency": "USD"},
                    {"type": "audit", "price": "0.00", "currency": "USD"},
                ],
                "start": iso(start - timedelta(days=180 * r)),
                "end": iso(start - timedelta(days=180 * r) + timedelta(weeks=14)),
                "enrollment_start": None,
                "enrollment_end": None,
                "pacing_type": "instructor_paced" if r == 0 else "self_paced",
                "status": "published",
                "is_enrollable": True,
                "availability": "Current" if r == 0 else "Archived",
                "content_language": "en-us",
                "level_type": LEVELS[i % 3],
                "weeks_to_complete": 14,
                "min_effort": 6,
                "max_effort": 9,
                "staff": [{"given_name": "Gilbert", "family_name": "Strang"}],
            }
            for r in range(rng.randint(1, 2))
        ]
        courses.append(
            {
                "key": key,
                "uuid": f"00000000-0000-4000-8000-{i:012d}",
                "title": f"{title} {part}" if part > 1 else title,
                "short_description": f"<p>{title}: an MITx course on {topic.lower()}.</p>",
                "full_description": f"<p>{title}. Lectures, problem sets and exams.</p>",
                "image": {"src": f"https://prod-discovery.edx-cdn.org/media/course/image/{i}.jpg"},
                "marketing_url": f"https://www.edx.org/course/{key.lower().replace('+', '-')}",
                "owners": [{"key": "MITx", "name": "Massachusetts Institute of Technology"}],
                "subjects": [{"name": topic}],
                "modified": iso(FUTURE - timedelta(days=i % 300)),
                "course_runs": runs,
            }
        )
    programs = [
        {
            "uuid": f"10000000-0000-4000-8000-{p:012d}",
            "title": f"XSeries Program in {subject(p)[2]}",
            "type": "XSeries",
            "status": "active",
            "marketing_url": f"https://www.edx.org/xseries/demo-{p}",
            "banner_image": {"medium": {"url": f"https://prod-discovery.edx-cdn.org/p{p}.png"}},
            "authoring_organizations": [{"key": "MITx"}],
            "courses": courses[p * 8 : p * 8 + 3],
            "data_modified_timestamp": iso(FUTURE),
        }
        for p in range(max(1, n_courses // 8))
    ]
    # One non-MIT course: the extractor must filter it out (as the recorded catalog has).
    courses.append({**courses[0], "key": "HarvardX+CS50", "owners": [{"key": "HarvardX"}]})
    return courses, programs


def install_edx(
    server: DemoServer, courses: list[dict], programs: list[dict], page_size: int = 20
) -> dict[str, str]:
    token_endpoint(server)
    for path, items in (
        ("/api/v1/catalogs/10/courses/", courses),
        ("/api/v1/programs/", programs),
    ):
        server.route(path, requires_jwt(drf_pages(path, items, page_size, lambda: server.base_url)))
    return {
        "EDX_API_CLIENT_ID": "demo-client",
        "EDX_API_CLIENT_SECRET": "demo-secret",
        "EDX_API_ACCESS_TOKEN_URL": f"{server.base_url}{TOKEN_PATH}",
        "EDX_API_URL": f"{server.base_url}/api/v1/catalogs/10/courses/",
        "EDX_PROGRAMS_API_URL": f"{server.base_url}/api/v1/programs/",
    }


def install(server: DemoServer) -> dict[str, str]:
    return install_edx(server, *edx_catalog())
