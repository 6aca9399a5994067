"""The judged corpus: MIT Learn's recorded payloads (../shared/fixtures, read at run time, never
copied here) through each source's pure transform, as the JSON lines `learn transform` prints.

One row per recorded page: (source, kind, payload file, context files). Resources only: the
search service answers with resources (feed items and view events have no place in a ranking).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from learnflow.models import Resource
from learnflow.settings import get_settings

MITLEARN = get_settings().reference_data_dir  # ../shared/fixtures/mitlearn by default
SHARED = MITLEARN.parent
TEST_JSON = MITLEARN / "test_json"
YOUTUBE = TEST_JSON / "youtube"
PODCASTS = SHARED / "open-podcast-data" / "podcasts"

PAGES: list[tuple[str, str, Path, list[Path]]] = [
    ("mitxonline", "courses", TEST_JSON / "mitxonline_courses.json", []),
    (
        "mitxonline",
        "programs",
        TEST_JSON / "mitxonline_programs.json",
        [TEST_JSON / "mitxonline_courses.json", TEST_JSON / "mitxonline_program_children_loader.json"],
    ),
    ("edx", "courses", TEST_JSON / "test_mitx_course.json", []),
    ("edx", "courses", TEST_JSON / "test_non_mitx_course.json", []),
    ("edx", "programs", TEST_JSON / "test_mitx_programs.json", []),
    ("xpro", "courses", TEST_JSON / "xpro_courses.json", []),
    ("xpro", "programs", TEST_JSON / "xpro_programs.json", []),
    *[
        ("mitpe", "courses", TEST_JSON / "mitpe" / f"professional_ed_resources_{n}.json", [])
        for n in range(3)
    ],
    ("sloan", "courses", TEST_JSON / "test_sloan_courses.json", [TEST_JSON / "test_sloan_runs.json"]),
    ("sloan_news", "webinars", TEST_JSON / "sloan_webinars_output.json", []),
    ("ovs", "videos", TEST_JSON / "ovs_videos.json", []),
    ("ovs", "playlists", TEST_JSON / "ovs_videos.json", [TEST_JSON / "ovs_videos.json"]),
    ("oll", "courses", MITLEARN / "learning_resources" / "data" / "oll_metadata.csv", []),
    ("medium_news", "news", MITLEARN / "test_html" / "test_medium_mit_news.rss", []),
    (
        "podcasts",
        "episodes",
        MITLEARN / "test_html" / "test_podcast.rss",
        [PODCASTS / "chalk-radio.yaml"],
    ),
    *[
        ("youtube", "videos", YOUTUBE / f"videos.list.{n}.json", [SHARED / "open-video-data" / "youtube" / "channels.yaml"])
        for n in (0, 1, 3)
    ],
    (
        "youtube",
        "playlists",
        YOUTUBE / "playlists.list.1.json",
        [SHARED / "open-video-data" / "youtube" / "channels.yaml", *sorted(YOUTUBE.glob("playlistItems.*.json"))],
    ),
]  # fmt: skip


def _read(path: Path):
    from sources.base import load_json

    raw = path.read_bytes()
    return load_json(raw) if raw.lstrip()[:1] in (b"{", b"[") else raw


def corpus_resources() -> tuple[list[Resource], dict[str, int]]:
    """Every published resource the recorded pages give, once per key (the last page wins)."""
    from sources import get_source

    by_key: dict[str, Resource] = {}
    per_source: Counter[str] = Counter()
    for source, kind, payload, context in PAGES:
        out = get_source(source).transform_payload(
            kind, _read(payload), [_read(c) for c in context]
        )
        for r in out.resources:
            if r.published:
                by_key[r.key] = r
                per_source[source] += 1
    return list(by_key.values()), dict(per_source)


def write_corpus(path: Path) -> dict[str, int]:
    """The corpus as JSON lines (what `learn transform` prints); returns counts per source."""
    resources, per_source = corpus_resources()
    path.write_text("".join(r.model_dump_json() + "\n" for r in resources))
    return {"resources": len(resources), **per_source}
