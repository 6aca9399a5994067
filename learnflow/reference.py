"""Reference data: platforms, offerors, departments and the topic tree with per-offeror crosswalks.

Read at run time from MIT Learn's data fixtures (settings.reference_data_dir), never copied here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from learnflow.settings import get_settings


@dataclass
class ReferenceData:
    platforms: dict[str, dict] = field(default_factory=dict)
    offerors: dict[str, dict] = field(default_factory=dict)
    departments: dict[str, str] = field(default_factory=dict)  # department_id -> name
    topics: dict[str, dict] = field(default_factory=dict)  # lower(name) -> {name, parent, id}
    # offeror -> lower(source name) -> every topic that lists the name in its mappings
    crosswalk: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def department_id(self, name: str) -> str | None:
        lowered = name.strip().lower()
        for dept_id, dept_name in self.departments.items():
            if dept_name.lower() == lowered:
                return dept_id
        return None

    def map_topics(self, names: list[str], offeror: str | None) -> list[str]:
        """MIT Learn's transform_topics + load_topics: a name the offeror's crosswalk lists maps
        to every topic that lists it (and only those); any other name is kept when it is a topic
        name; parents are added. Names compare case-insensitively (MIT Learn compares exactly:
        kept on purpose, a feed's "data science" is the topic "Data Science")."""
        mapped: list[str] = []
        walk = self.crosswalk.get(offeror or "", {})
        for raw in names:
            name = raw.strip()
            if not name:
                continue
            if name.lower() in walk:
                candidates = walk[name.lower()]
            elif name.lower() in self.topics:
                candidates = [self.topics[name.lower()]["name"]]
            else:
                candidates = []
            for topic in candidates:
                for t in self._with_parents(topic):
                    if t not in mapped:
                        mapped.append(t)
        return mapped

    def _with_parents(self, topic: str) -> list[str]:
        out = [topic]
        parent = self.topics.get(topic.lower(), {}).get("parent")
        while parent:
            out.append(parent)
            parent = self.topics.get(parent.lower(), {}).get("parent")
        return out


def _fixture_rows(path: Path) -> list[dict]:
    return [row["fields"] for row in json.loads(path.read_text())] if path.exists() else []


def _walk_topics(nodes: list[dict], parent: str | None, data: ReferenceData) -> None:
    for node in nodes:
        name = node["name"]
        data.topics[name.lower()] = {"name": name, "parent": parent, "id": node.get("id")}
        for offeror, source_names in (node.get("mappings") or {}).items():
            for source_name in source_names or []:
                listed = data.crosswalk.setdefault(offeror, {}).setdefault(source_name.lower(), [])
                if name not in listed:
                    listed.append(name)
        _walk_topics(node.get("children") or [], name, data)


def load_reference_data(root: Path) -> ReferenceData:
    data = ReferenceData()
    fixtures = root / "data_fixtures" / "fixtures"
    for row in _fixture_rows(fixtures / "platforms.json"):
        data.platforms[row["code"]] = row
    for row in _fixture_rows(fixtures / "offered_by.json"):
        data.offerors[row["code"]] = row
    for row in _fixture_rows(fixtures / "departments.json"):
        data.departments[str(row["department_id"])] = row["name"]
    topics_file = root / "learning_resources" / "data" / "topics.yaml"
    if topics_file.exists():
        _walk_topics(yaml.safe_load(topics_file.read_text()).get("topics", []), None, data)
    # Platforms MIT Learn has in its enum but not in the fixture file.
    for code, name in {"climate": "MIT Climate", "ovs": "ODL Video Service"}.items():
        data.platforms.setdefault(code, {"code": code, "name": name, "url": None})
    return data


@lru_cache(maxsize=1)
def reference_data() -> ReferenceData:
    return load_reference_data(get_settings().reference_data_dir)
