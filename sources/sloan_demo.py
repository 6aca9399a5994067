"""Sloan Executive Education (OAuth2 JWT): demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

from datetime import timedelta

from sources._demo import (
    FUTURE,
    DemoServer,
    Response,
    iso,
    requires_jwt,
    subject,
    token_endpoint,
)


def sloan_catalog(n_courses: int = 8) -> tuple[list[dict], list[dict]]:
    courses, runs = [], []
    for i in range(n_courses):
        _number, title, topic, _dept = subject(i)
        cid = f"a056g00000DEMO{i:03d}"
        courses.append(
            {
                "Title": f"{title} for Executives",
                "Course_Id": cid,
                "SourceCreateDate": "2030-02-10T14:56:33.000Z",
                "SourceLastModifiedDate": iso(FUTURE - timedelta(days=i)),
                "Description": f"A two-day program on {topic.lower()} for leaders.",
                "Topics": "Business: Digital Business/IT",
                "Image_Src": f"https://executive.mit.edu/images/demo{i}.jpg",
                "URL": f"https://executive.mit.edu/course/demo-{i}/{cid}.html",
                "Certification_Type": "Digital Business",
            }
        )
        for r in range(2):
            start = (FUTURE + timedelta(days=60 * r + 3 * i)).date()
            runs.append(
                {
                    "CO_Title": f"DEMO {start:%m-%d-%Y}",
                    "Course_Id": cid,
                    "Start_Date": str(start),
                    "End_Date": str(start + timedelta(days=1)),
                    "Delivery": "In Person" if r else "Online",
                    "Duration": "2 days",
                    "Price": "4900.0",
                    "Sprint_Course": "false",
                    "Continuing_Ed_Credits": "1.4",
                    "Time_Commitment": "8 hours/day",
                    "Location": "Cambridge, MA",
                    "Tuition_Cost(non-USD)": None,
                    "Currency": None,
                    "Format": None,
                    "Faculty_Name": "Erik Brynjolfsson",
                }
            )
    return courses, runs


def install_sloan(server: DemoServer) -> dict[str, str]:
    courses, runs = sloan_catalog()
    token_endpoint(server, "/sloan/oauth/token")
    server.route("/sloan/api/courses", requires_jwt(lambda _r: Response.json(courses)))
    server.route("/sloan/api/course-offerings", requires_jwt(lambda _r: Response.json(runs)))
    return {
        "SEE_API_URL": f"{server.base_url}/sloan/api/",
        "SEE_API_ACCESS_TOKEN_URL": f"{server.base_url}/sloan/oauth/token",
        "SEE_API_CLIENT_ID": "demo-client",
        "SEE_API_CLIENT_SECRET": "demo-secret",
    }


install = install_sloan
