"""Open Learning Library (metadata CSV): demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

from sources._demo import (
    DemoServer,
    Response,
    subject,
)

OLL_COLUMNS = [
    "OLL Course", "MITxO Primary Child", "MITxO Adopted Secondary Child ", "Instructor 1",
    "Instructor 2", "Level", "Offered by", "Language", "readable_id", "title", "url",
    "description", "published", "License CC", "Duration", "Student Effort",
    "Course Image URL Flat",
]  # fmt: skip


def oll_csv(n_courses: int = 10) -> bytes:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=OLL_COLUMNS)
    writer.writeheader()
    for i in range(n_courses):
        number, title, topic, _dept = subject(i)
        run = f"MITx+{number}r_{i}+2030_Spring"
        writer.writerow(
            {
                "OLL Course": f"{number}r_{i}",
                "MITxO Primary Child": topic,
                "MITxO Adopted Secondary Child ": "",
                "Instructor 1": "Jeremy Orloff",
                "Instructor 2": "",
                "Level": "Undergraduate",
                "Offered by": "MITx" if i % 3 else "OCW",
                "Language": "English",
                "readable_id": run,
                "title": f"{title} (OLL)",
                "url": f"https://openlearninglibrary.mit.edu/courses/course-v1:{run}/about",
                "description": f"Self-paced {topic.lower()}.",
                "published": "YES",
                "License CC": "YES",
                "Duration": "6",
                "Student Effort": "5",
                "Course Image URL Flat": f"https://openlearninglibrary.mit.edu/asset-{i}.jpg",
            }
        )
    return out.getvalue().encode()


def install_oll(server: DemoServer) -> dict[str, str]:
    server.route("/oll/metadata.csv", Response(200, oll_csv(), {"Content-Type": "text/csv"}))
    return {"OLL_CSV_URL": f"{server.base_url}/oll/metadata.csv"}


install = install_oll
