"""MIT Professional Education (Drupal feeds, ?page=N until []): demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sources._demo import (
    FUTURE,
    DemoServer,
    Request,
    Response,
    subject,
)


def mitpe_feeds(n_courses: int = 9) -> dict[str, list[dict]]:
    courses = []
    for i in range(n_courses):
        _number, title, topic, _dept = subject(i)
        start = (FUTURE + timedelta(days=20 * i)).date()
        courses.append(
            {
                "uuid": f"20000000-0000-4000-8000-{i:012d}",
                "title": f"{title} Short Program",
                "url": f"/course-catalog/demo-{i}",
                "description": f"<p>Two weeks on campus: {topic.lower()}.</p>",
                "learning_format": "In Person" if i % 2 else "Online",
                "resource_type": "course",
                "course_certificate": "Certificate of Completion",
                "topics": "Business Analytics|Machine Learning",
                "image__src": f"/sites/default/files/demo-{i}.jpg",
                "image__alt": f"{title} header",
                "courses": "",
                "start_date": str(start),
                "end_date": str(start + timedelta(days=5)),
                "enrollment_end_date": str(start - timedelta(days=7)),
                "price": "$3,900",
                "lead_instructors": "Eric Lander",
                "instructors": "Walter Lewin",
                "location": "Cambridge, MA",
                "duration": "5 Days",
                "continuing_ed_credits": "3.6",
                "run__readable_id": f"{9000 + i}{start:%Y%m%d}",
            }
        )
    program_start = (FUTURE + timedelta(days=15)).date()
    courses.append(
        {
            **courses[0],
            "uuid": "20000000-0000-4000-8000-999999999999",
            "title": "Professional Certificate Program in Demo Studies",
            "url": "/course-catalog/demo-program",
            "resource_type": "program",
            "course_certificate": "",
            "courses": "|".join(c["title"] for c in courses[:3]),
            "run__readable_id": f"99999{program_start:%Y%m%d}",
        }
    )
    news = [
        {
            "id": f"news-{i}",
            "title": f"MIT Professional Education news {i}",
            "url": f"/news/demo-{i}",
            "summary": "<p>What professionals learned this term.</p>",
            "image": f"/sites/default/files/news-{i}.jpg",
            "author": "Jane Doe and John Roe",
            "date": str((FUTURE - timedelta(days=10 * i)).date()),
        }
        for i in range(4)
    ]
    events = [
        {
            "id": f"event-{i}",
            "title": f"Open house {i}",
            "url": f"/events/demo-{i}",
            "summary": "<p>Meet the faculty.</p>",
            "image": "",
            "start_date": str((FUTURE + timedelta(days=7 * i)).date()),
            "end_date": str((FUTURE + timedelta(days=7 * i)).date()),
            "time_range": "10:00 AM-11:00 AM",
        }
        for i in range(3)
    ]
    return {"courses": courses, "news": news, "events": events}


def drupal_pages(items: list[dict], page_size: int) -> Callable[[Request], Response]:
    """`?page=0,1,…` answering a JSON list, then `[]` (how MITPE's feeds end)."""

    def handler(req: Request) -> Response:
        page = int(req.q("page", "0") or 0)
        return Response.json(items[page * page_size : (page + 1) * page_size])

    return handler


def install_mitpe(server: DemoServer) -> dict[str, str]:
    for kind, items in mitpe_feeds().items():
        server.route(f"/feeds/{kind}/", drupal_pages(items, 4))
    return {"MITPE_BASE_URL": f"{server.base_url}/"}


install = install_mitpe
