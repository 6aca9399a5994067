"""Demo course archives (OLX tarballs, a Canvas export, an OCW site) for `learn up --demo`.

`learn up --demo` starts moto's S3 and uploads these (`install_demo_archives`); the archive
schedules then find one archive per course, match it to a run the demo catalog ingestion created,
and load its files (text by the embedded Tika: no JVM, no server).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sources.edx_demo import edx_catalog
from sources.mitxonline_demo import mitxonline_catalog
from sources.xpro_demo import xpro_catalog

ARCHIVE_BUCKETS = ("ol-data-lake-landing-zone-production", "ocw-content-live-production")
ARCHIVE_BUCKET = ARCHIVE_BUCKETS[0]  # COURSE_ARCHIVE_BUCKET_NAME's default
OCW_BUCKET = ARCHIVE_BUCKETS[1]  # OCW_LIVE_BUCKET's default
# Bucket prefixes of the archive sources' default settings, by the archive schedule's source name.
OLX_PREFIXES = {
    "mitxonline": "mitxonline/openedx/raw_data/course_xml/",
    "xpro": "xpro/openedx/raw_data/course_xml/",
    "edx": "edxorg-raw-data/edxorg/raw_data/course_xml/",
}
CANVAS_PREFIX = "canvas/course_content/"
OCW_DEMO_SLUG = "18-03-differential-equations-spring-2031"
ARCHIVE_MTIME = int(datetime(2031, 1, 5, tzinfo=UTC).timestamp())  # fixed: same bytes every run


def _tar_gz(files: dict[str, bytes]) -> bytes:
    """A gzipped tar of `files` with fixed headers (same archive, same checksum, every run)."""
    import gzip
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), ARCHIVE_MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def olx_archive(run_id: str, title: str, topic: str) -> bytes:
    """A small OLX course export: course, chapter, an HTML block with its pointer, a static file."""
    from html import escape

    t, tp = escape(title, quote=True), escape(topic.lower())
    return _tar_gz(
        {
            "course/course.xml": f'<course url_name="course" org="MITx" course="{escape(run_id, quote=True)}"/>'.encode(),
            "course/course/course.xml": (
                f'<course display_name="{t}"><chapter url_name="week1"/></course>'
            ).encode(),
            "course/chapter/week1.xml": (
                b'<chapter display_name="Week 1: Foundations"><html url_name="intro"/></chapter>'
            ),
            "course/html/intro.xml": (
                b'<html display_name="Welcome and overview" filename="intro"/>'
            ),
            "course/html/intro.html": (
                f"<h2>Welcome to {t}</h2><p>This course introduces {tp}: lectures, worked "
                f"examples and problem sets, one week at a time.</p>"
            ).encode(),
            "course/static/syllabus.txt": (
                f"{title} syllabus\nWeek 1: foundations of {topic.lower()}\n"
                "Week 2: methods and examples\nWeek 3: review and final exam\n"
            ).encode(),
        }
    )


def canvas_export(course_code: str, title: str) -> bytes:
    """A small Canvas `.imscc`: course settings, one published page and one published file."""
    import io
    import zipfile
    from html import escape

    cc = "http://canvas.instructure.com/xsd/cccv1p0"
    cp = "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1"
    t = escape(title)
    files = {
        "course_settings/course_settings.xml": (
            f'<course xmlns="{cc}" identifier="demo"><title>{t}</title>'
            f"<course_code>{course_code}</course_code>"
            "<start_at>2031-01-06T14:00:00Z</start_at><conclude_at>2031-05-20T14:00:00Z</conclude_at>"
            "</course>"
        ),
        "course_settings/context.xml": (
            f'<context_info xmlns="{cc}"><course_id>4242</course_id>'
            "<canvas_domain>canvas.example.edu</canvas_domain></context_info>"
        ),
        "imsmanifest.xml": (
            f'<manifest xmlns="{cp}" identifier="demo-manifest"><organizations/><resources>'
            '<resource identifier="page1" type="webcontent" href="wiki_content/welcome.html">'
            '<file href="wiki_content/welcome.html"/></resource>'
            '<resource identifier="file1" type="webcontent" href="web_resources/reading-list.html">'
            '<file href="web_resources/reading-list.html"/></resource>'
            "</resources></manifest>"
        ),
        "wiki_content/welcome.html": (
            '<html><head><title>Welcome</title><meta name="workflow_state" content="active"/>'
            f"</head><body><h1>Welcome to {t}</h1><p>How the Earth's surface changes: "
            "plate tectonics, erosion and the rock cycle.</p></body></html>"
        ),
        "web_resources/reading-list.html": (
            "<html><head><title>Reading list</title></head><body><ul>"
            "<li>Earth: Portrait of a Planet</li><li>Understanding Earth</li></ul></body></html>"
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2031, 1, 5, 0, 0, 0)), text)
    return out.getvalue()


def ocw_site(slug: str = OCW_DEMO_SLUG) -> dict[str, bytes]:
    """An OCW site as the live bucket holds it: course data.json, a page, a text resource."""
    prefix = f"courses/{slug}"
    course = {
        "site_uid": "6b5f4b8e-0000-4000-8000-000000001803",
        "course_title": "Differential Equations",
        "course_description": "Ordinary differential equations and their applications.",
        "primary_course_number": "18.03",
        "extra_course_numbers": "",
        "term": "Spring",
        "year": "2031",
        "department_numbers": ["18"],
        "level": ["Undergraduate"],
        "learning_resource_types": ["Lecture Notes", "Problem Sets"],
        "topics": [["Mathematics", "Differential Equations"]],
        "instructors": [{"first_name": "Gilbert", "last_name": "Strang", "title": "Prof. Strang"}],
    }
    page = {
        "title": "Syllabus",
        "content": "Lectures three times a week; weekly problem sets; two exams and a final.",
    }
    notes = {
        "title": "Lecture 1: Direction fields",
        "resourcetype": "Document",
        "file_type": "text/plain",
        "file": f"/{prefix}/lecture-1-notes.txt",
        "learning_resource_types": ["Lecture Notes"],
    }
    return {
        f"{prefix}/data.json": json.dumps(course).encode(),
        f"{prefix}/pages/syllabus/data.json": json.dumps(page).encode(),
        f"{prefix}/resources/lecture-1-notes/data.json": json.dumps(notes).encode(),
        f"{prefix}/lecture-1-notes.txt": (
            b"Direction fields show the slope y' = f(x, y) at each point; "
            b"integral curves follow them."
        ),
    }


def demo_archives(n_per_source: int = 3) -> dict[tuple[str, str], bytes]:
    """(bucket, key) -> bytes: OLX archives for runs the demo catalogs create, Canvas, OCW."""
    objects: dict[tuple[str, str], bytes] = {}
    mitx_courses, _ = mitxonline_catalog()
    edx_courses, _ = edx_catalog()
    xpro_courses, _ = xpro_catalog()
    runs = {
        "mitxonline": [
            (c["courseruns"][0]["courseware_id"], c["title"], c["topics"][0]["name"])
            for c in mitx_courses[:n_per_source]
        ],
        "edx": [
            (c["course_runs"][0]["key"], c["title"], c["subjects"][0]["name"])
            for c in edx_courses[:n_per_source]
        ],
        "xpro": [
            (c["courseruns"][0]["courseware_id"], c["title"], c["topics"][0]["name"])
            for c in xpro_courses[:n_per_source]
        ],
    }
    for source, items in runs.items():
        for run_id, title, topic in items:
            key = f"{OLX_PREFIXES[source]}{run_id}/{run_id}.tar.gz"
            objects[(ARCHIVE_BUCKET, key)] = olx_archive(run_id, title, topic)
    canvas_key = f"{CANVAS_PREFIX}7/earth-and-its-processes.imscc"
    objects[(ARCHIVE_BUCKET, canvas_key)] = canvas_export("ESS-101", "Earth and Its Processes")
    for key, body in ocw_site().items():
        objects[(OCW_BUCKET, key)] = body
    return objects


def install_demo_archives(s3: object) -> dict[str, str]:
    """Create the archive buckets in `s3` (a boto3 client) and upload the demo archives.
    Returns the settings naming the buckets (their defaults, spelled out for the env file)."""
    for bucket in (ARCHIVE_BUCKET, OCW_BUCKET):
        s3.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    for (bucket, key), body in demo_archives().items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)  # type: ignore[attr-defined]
    return {"COURSE_ARCHIVE_BUCKET_NAME": ARCHIVE_BUCKET, "OCW_LIVE_BUCKET": OCW_BUCKET}
