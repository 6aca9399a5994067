"""The contract corpus: the recorded MITx Online / xPRO / edX payloads transformed by their real
sources, plus generated resources of every type (deterministic), as search documents.

Also a pure-Python oracle of MIT Learn's filter and facet semantics over the same documents
(`search_doc.filter_values`), so each backend is checked against the definition, not only
against the other backend.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from learnflow.models import (
    CertificationType,
    CourseNumber,
    Delivery,
    Department,
    Instructor,
    Price,
    Resource,
    ResourceType,
    Run,
    Topic,
)
from learnflow.search_doc import CASE_SENSITIVE_FILTERS, filter_values, to_search_document
from learnflow.settings import get_settings
from sources import get_source

TEST_JSON = get_settings().reference_data_dir / "test_json"

# (source, kind, payload file, context files)
RECORDED = [
    ("mitxonline", "courses", "mitxonline_courses.json", []),
    ("mitxonline", "programs", "mitxonline_programs.json", ["mitxonline_courses.json"]),
    ("xpro", "courses", "xpro_courses.json", []),
    ("xpro", "programs", "xpro_programs.json", []),
    ("edx", "courses", "test_mitx_course.json", []),
    ("edx", "programs", "test_mitx_programs.json", []),
]

BASE_CREATED = datetime(2024, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)

# Titles chosen to exercise analyzers: synonyms (ML / machine learning, chem, econ, SCM),
# stemming (equation/equations), possessives and phrases.
GENERATED_TITLES = [
    "Machine Learning for Healthcare",
    "Introduction to ML Systems",
    "Artificial Intelligence: Principles and Techniques",
    "Organic Chemistry Laboratory",
    "Chem Lab Safety",
    "Principles of Microeconomics",
    "Econ of Developing Countries",
    "Supply Chain Management Fundamentals",
    "SCM Analytics",
    "Linear Algebra Review",
    "Thermodynamics and Kinetics",
    "Fluid Mechanics Lecture Series",
    "Quantum Computing Fundamentals",
    "Biology of Cancer",
    "Introduction to Bio Engineering",
    "Natural Language Processing with Deep Learning",
    "Large Language Model Applications",
    "Entrepreneurship 101",
    "Negotiation for Engineers",
    "Marketing Analytics",
    "Data Science Bootcamp",
    "The Student's Guide to Writing",
    "Urban Planning Studio",
    "Music Theory and Composition",
]
TOPICS = ["Mathematics", "Science & Math", "Business & Management", "Engineering", "Humanities"]
DEPARTMENTS = [
    ("6", "Electrical Engineering and Computer Science"),
    ("18", "Mathematics"),
    ("15", "Sloan School of Management"),
]
PLATFORMS = [
    ("ocw", "ocw"),
    ("youtube", "ocw"),
    ("mitpe", "mitpe"),
    ("see", "see"),
    ("podcast", "ocw"),
]
LEVELS = ["introductory", "intermediate", "advanced"]
TYPES = [
    ResourceType.course,
    ResourceType.program,
    ResourceType.video,
    ResourceType.podcast_episode,
    ResourceType.document,
    ResourceType.video_playlist,
    ResourceType.podcast,
    ResourceType.learning_path,
]


def recorded_resources() -> list[Resource]:
    out: list[Resource] = []
    for name, kind, payload, context in RECORDED:
        load = lambda f: json.loads((TEST_JSON / f).read_text())  # noqa: E731
        result = get_source(name).transform_payload(kind, load(payload), [load(c) for c in context])
        out.extend(result.resources)
    return out


def generated_resources(n: int = 72, seed: int = 7) -> list[Resource]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        rtype = TYPES[i % len(TYPES)]
        title = GENERATED_TITLES[i % len(GENERATED_TITLES)]
        if i >= len(GENERATED_TITLES):
            title = f"{title} {['Part', 'Module', 'Session'][i % 3]} {i // len(GENERATED_TITLES)}"
        platform, offeror = PLATFORMS[i % len(PLATFORMS)]
        dated = rtype in (ResourceType.course, ResourceType.program) and i % 5 != 0
        start = BASE_CREATED + timedelta(days=30 * (i % 40) - 400)
        runs = (
            [
                Run(
                    run_id=f"gen-{i}-run",
                    title=title,
                    start_date=start,
                    end_date=start + timedelta(days=90),
                    level=[LEVELS[i % 3]],
                    instructors=[Instructor(full_name=f"Instructor {chr(65 + i % 6)}")],
                    year=start.year,
                    semester=["Fall", "Spring", "Summer"][i % 3],
                )
            ]
            if dated
            else []
        )
        professional = rtype in (ResourceType.course, ResourceType.program) and i % 4 == 1
        out.append(
            Resource(
                readable_id=f"gen-{i:03d}",
                platform=platform,
                resource_type=rtype,
                etl_source="generated",
                title=title,
                offered_by=offeror,
                description=f"{title}. "
                + rnd.choice(
                    [
                        "Learn the fundamentals with worked examples.",
                        "A practical course with projects and case studies.",
                        "Lectures, problem sets and exams from MIT faculty.",
                    ]
                ),
                full_description="Covers "
                + ", ".join(
                    rnd.sample(
                        ["equations", "models", "data", "markets", "molecules", "circuits"], 2
                    )
                ),
                url=f"https://example.mit.edu/gen-{i:03d}",
                published=True,
                last_modified=BASE_CREATED - timedelta(days=200 * (i % 9)),
                topics=[Topic(name=t) for t in rnd.sample(TOPICS, 1 + i % 2)],
                departments=[Department(department_id=d, name=n) for d, n in DEPARTMENTS[: i % 3]],
                course_features=["Lecture Videos"]
                if i % 3 == 0
                else ["Problem Sets", "Exams"]
                if i % 3 == 1
                else [],
                certification=professional or i % 6 == 2,
                certification_type=(
                    CertificationType.professional
                    if professional
                    else CertificationType.completion
                    if i % 6 == 2
                    else CertificationType.none
                ),
                professional=professional,
                runs=runs,
                prices=[Price(amount=Decimal("0"))]
                if i % 4 != 1
                else [Price(amount=Decimal("999.00"))],
                delivery=[Delivery.online] if i % 7 else [Delivery.online, Delivery.in_person],
                completeness=[1.0, 0.4, 0.8][i % 3],
                course_numbers=[CourseNumber(value=f"{6 + i % 3}.{100 + i}")]
                if rtype == ResourceType.course
                else [],
                details={"view_count": 1000 - i * 7},
            )
        )
    return out


def corpus_documents() -> list[dict[str, Any]]:
    """Published resources as search documents, ids 1..n, distinct created_on times."""
    resources = [r for r in [*recorded_resources(), *generated_resources()] if r.published]
    return [
        to_search_document(r, i + 1, BASE_CREATED + timedelta(hours=i))
        for i, r in enumerate(resources)
    ]


def unpublished_recorded() -> list[Resource]:
    return [r for r in recorded_resources() if not r.published]


# -- the oracle -------------------------------------------------------------------------------


def _norm(name: str, values: list[str]) -> set[str]:
    return set(values) if name in CASE_SENSITIVE_FILTERS else {v.lower() for v in values}


def oracle_match(
    doc: dict[str, Any], filters: dict[str, list[str]], skip: str | None = None
) -> bool:
    have = filter_values(doc)
    return all(
        have[name] and set(have[name]) & _norm(name, values)
        for name, values in filters.items()
        if values and name != skip
    )


def oracle_ids(docs: list[dict[str, Any]], filters: dict[str, list[str]]) -> set[int]:
    return {d["id"] for d in docs if oracle_match(d, filters)}


def oracle_facets(
    docs: list[dict[str, Any]], filters: dict[str, list[str]], facets: list[str]
) -> dict[str, dict[str, int]]:
    """Facet counts (values lowercased except ids), each under all other filters."""
    out = {}
    for name in facets:
        counts: Counter[str] = Counter()
        for d in docs:
            if oracle_match(d, filters, skip=name):
                counts.update(set(filter_values(d)[name]))
        out[name] = dict(counts)
    return out
