"""The keyword index interface. Implementations: tantivy (embedded) and OpenSearch (production).

Semantics shared by both (MIT Learn §4.3): filters are OR within a field and AND across fields,
applied after scoring (post_filter); facets are disjunctive (each counted under all *other*
filters); results are paged by offset/limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

SEARCH_MODES = ("phrase", "best_fields", "most_fields")
# The engines search the first this-many words of a text: a longer text (a pasted page) still
# answers, and no engine meets a query with thousands of clauses (OpenSearch counts every term of
# every field against its limit of 1024).
MAX_QUERY_WORDS = 32


def fuzzy_distance(word: str) -> int:
    """OpenSearch's `fuzziness: AUTO`: 0 edits up to 2 characters, 1 up to 5, else 2."""
    return 0 if len(word) <= 2 else 1 if len(word) <= 5 else 2


_WORD = re.compile(r"\w+")
SORT_FIELDS = {
    "id": "id",
    "readable_id": "readable_id",
    "last_modified": "last_modified",
    "new": "created_on",
    "start_date": "next_start_date",
    "upcoming": "next_start_date",
    "views": "views",
    # MIT Learn's remaining options (additive): featured rank and MIT course number order.
    "featured": "featured_rank",
    "mitcoursenumber": "sort_coursenum",
}


def is_quoted(text: str) -> bool:
    """A fully quoted text means an exact phrase (MIT Learn's query_string branch)."""
    return len(text) >= 2 and text.startswith('"') and text.endswith('"')


def engine_text(text: str) -> str:
    """User text as the engines search it: whitespace collapsed, cut after MAX_QUERY_WORDS words
    (a quoted phrase stays quoted). It is text, never query syntax: engines build term and
    phrase queries from it."""
    text = " ".join(text.split())
    for n, word in enumerate(_WORD.finditer(text), start=1):
        if n == MAX_QUERY_WORDS:
            short = text[: word.end()]
            return short + '"' if is_quoted(text) else short
    return text


@dataclass
class KeywordQuery:
    text: str = ""
    filters: dict[str, list[str]] = field(default_factory=dict)
    facets: list[str] = field(default_factory=list)
    sort: str | None = None  # a SORT_FIELDS key, "-" prefix for descending
    offset: int = 0
    limit: int = 10
    # MIT Learn's keyword options (reference/mit-learn.md §4.3); engines apply what they support.
    search_mode: str = "phrase"
    slop: int = 6
    min_score: float = 0.0
    yearly_decay_percent: float = 2.5
    max_incompleteness_penalty: float = 90.0
    content_file_score_weight: float = 1.0
    # Typeahead: when set, match titles with a word starting with this text (text is ignored).
    title_prefix: str | None = None
    # best_fields/most_fields: also match words within OpenSearch's AUTO edit distance (1 for 3-5
    # characters, 2 above), so a misspelt word finds something. Hybrid's keyword side sets it.
    fuzzy: bool = False
    # MIT Learn's catalog scoring on engines that have it (OpenSearch: the program index boost and
    # the synonym-expanded `.english` fields). The default mode's keyword side turns it off and
    # ranks by BM25 over English-stemmed text alone, as the embedded engine always does.
    catalog_scoring: bool = True


@dataclass
class Hit:
    id: int
    score: float
    document: dict[str, Any]


@dataclass
class KeywordResults:
    total: int
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    # True when `total` is a lower bound (engines that stop counting early).
    total_is_estimate: bool = False


@runtime_checkable
class KeywordIndex(Protocol):
    async def upsert(self, documents: list[dict[str, Any]]) -> None: ...
    async def delete(self, ids: list[int]) -> None: ...
    async def search(self, query: KeywordQuery) -> KeywordResults: ...
    async def get(self, ids: list[int]) -> list[dict[str, Any]]: ...
    async def count(self) -> int: ...
    async def healthy(self) -> bool: ...
    async def close(self) -> None: ...
