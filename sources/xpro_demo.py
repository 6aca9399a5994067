"""xPRO: demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

from datetime import timedelta

from sources._demo import (
    FUTURE,
    DemoServer,
    Response,
    iso,
    subject,
)


def xpro_catalog(n_courses: int = 12) -> tuple[list[dict], list[dict]]:
    courses = []
    for i in range(n_courses):
        _number, title, topic, _dept = subject(i)
        rid = f"course-v1:xPRO+DEMO{i}x"
        courses.append(
            {
                "id": 100 + i,
                "title": f"{title} for Professionals",
                "description": f"<p>Apply {topic.lower()} at work.</p>",
                "url": f"https://xpro.mit.edu/courses/{rid}/",
                "thumbnail_url": f"https://xpro.mit.edu/static/images/demo{i}.jpg",
                "readable_id": rid,
                "courseruns": [
                    {
                        "title": f"{title} for Professionals",
                        "start_date": iso(FUTURE + timedelta(days=30 * i)),
                        "end_date": iso(FUTURE + timedelta(days=30 * i + 42)),
                        "enrollment_start": iso(FUTURE - timedelta(days=365)),
                        "enrollment_end": iso(FUTURE + timedelta(days=30 * i + 7)),
                        "courseware_url": f"https://courses.xpro.mit.edu/courses/{rid}+R1/course/",
                        "courseware_id": f"{rid}+R1",
                        "run_tag": "R1",
                        "id": 1000 + i,
                        "instructors": [{"name": "Ada Lovelace"}],
                        "current_price": 1499.0,
                    }
                ],
                "topics": [{"name": f"Technology:{topic}"}],
                "time_commitment": "5 Hours per Week",
                "duration": "6 Weeks",
                "format": "Online",
                "credits": "1.5",
                "platform": "xPRO",
                "availability": "dated",
            }
        )
    programs = [
        {
            "id": 50 + p,
            "title": f"Professional Certificate in {subject(p)[2]}",
            "description": "<p>A certificate of related courses.</p>",
            "url": f"https://xpro.mit.edu/programs/program-v1:xPRO+DEMO{p}/",
            "thumbnail_url": None,
            "readable_id": f"program-v1:xPRO+DEMO{p}",
            "current_price": 2999.0,
            "courses": courses[p * 4 : p * 4 + 3],
            "topics": [{"name": f"Technology:{subject(p)[2]}"}],
            "time_commitment": "5 Hours per Week",
            "duration": "18 Weeks",
            "format": "Online",
            "platform": "xPRO",
            "availability": "dated",
        }
        for p in range(max(1, n_courses // 4))
    ]
    return courses, programs


def install_xpro(server: DemoServer) -> dict[str, str]:
    courses, programs = xpro_catalog()
    server.route("/api/courses/", Response.json(courses))
    server.route("/api/programs/", Response.json(programs))
    return {
        "XPRO_COURSES_API_URL": f"{server.base_url}/api/courses/",
        "XPRO_CATALOG_API_URL": f"{server.base_url}/api/programs/",
    }


install = install_xpro
