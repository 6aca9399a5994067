"""The synthetic search corpus the search benchmarks share: words, queries, facets, filters, and
N search documents built through the real model (`generate`)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

WORDS = [
    "differential",
    "equations",
    "linear",
    "algebra",
    "machine",
    "learning",
    "python",
    "data",
    "science",
    "economics",
    "supply",
    "chain",
    "management",
    "biology",
    "chemistry",
    "physics",
    "mechanics",
    "quantum",
    "climate",
    "energy",
    "policy",
    "design",
    "thinking",
    "leadership",
    "finance",
    "accounting",
    "statistics",
    "probability",
    "calculus",
    "robotics",
    "neural",
    "networks",
    "deep",
    "optimization",
    "algorithms",
    "systems",
    "circuits",
    "signals",
    "materials",
    "structures",
    "entrepreneurship",
    "innovation",
    "marketing",
    "strategy",
    "healthcare",
    "genetics",
    "neuroscience",
    "urban",
    "planning",
    "architecture",
    "history",
    "philosophy",
    "writing",
    "communication",
    "music",
    "ethics",
]
QUERIES = [
    "machine learning",
    "differential equations",
    "supply chain",
    "quantum physics",
    "climate policy",
    "neural networks",
    "linear algebra",
    "data science python",
    "finance accounting",
    "robotics systems",
    "urban planning",
    "genetics biology",
]
FACETS = ["resource_type", "platform", "offered_by"]


def _filters() -> dict[str, list[str]]:
    return {"free": ["true"], "delivery": ["online"]}


def generate(n: int, seed: int = 7) -> list[dict]:
    """N search documents built through the real model and `to_search_document`."""
    from learnflow.models import Resource
    from learnflow.reference import reference_data
    from learnflow.search_doc import to_search_document

    ref = reference_data()
    rng = random.Random(seed)
    platforms = sorted(ref.platforms)
    offerors = sorted(ref.offerors)
    topics = sorted(t["name"] for t in ref.topics.values())
    departments = sorted(ref.departments.items())
    types = ["course"] * 5 + ["program", "video", "podcast_episode", "document"]
    levels = ["introductory", "intermediate", "advanced", "undergraduate", "graduate"]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    docs = []
    for i in range(1, n + 1):
        title = " ".join(rng.sample(WORDS, rng.randint(2, 6))).title()
        rtype = rng.choice(types)
        dept_id, dept_name = rng.choice(departments)
        start = now + timedelta(days=rng.randint(-900, 300))
        res = Resource.model_validate(
            {
                "readable_id": f"bench-{i}",
                "platform": rng.choice(platforms),
                "resource_type": rtype,
                "etl_source": "bench",
                "title": title,
                "offered_by": rng.choice(offerors),
                "description": " ".join(rng.choices(WORDS, k=rng.randint(15, 40))),
                "full_description": " ".join(rng.choices(WORDS, k=rng.randint(40, 120))),
                "url": f"https://learn.mit.edu/bench/{i}",
                "topics": [{"name": t} for t in rng.sample(topics, rng.randint(1, 3))],
                "departments": [{"department_id": dept_id, "name": dept_name}],
                "certification": rng.random() < 0.3,
                "professional": rng.random() < 0.2,
                "delivery": [rng.choice(["online", "online", "in_person", "hybrid"])],
                "runs": [
                    {
                        "run_id": f"bench-{i}-r1",
                        "start_date": start.isoformat(),
                        "level": [rng.choice(levels)],
                        "prices": [] if rng.random() < 0.6 else [{"amount": "100"}],
                    }
                ],
                "prices": [] if rng.random() < 0.6 else [{"amount": "100"}],
                "last_modified": (start - timedelta(days=30)).isoformat(),
                "completeness": round(rng.random(), 2),
                "details": {"view_count": rng.randint(0, 5000)},
            }
        )
        docs.append(to_search_document(res, i, start - timedelta(days=60)))
    return docs
