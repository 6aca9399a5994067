"""MIT Learn's search filters as Qdrant filters, for both vector stores (qdrant-client and
qdrant-edge spell these types the same: `models` is either `qdrant_client.models` or
`qdrant_edge`)."""

from __future__ import annotations

from typing import Any


def payload_filter(
    models: Any, filters: dict[str, list[str]], case_sensitive: set[str], skip: str | None
) -> Any:
    """Every field must match one of its values (`skip`: a facet counted under the others)."""
    must = [
        models.FieldCondition(key=f"f_{name}", match=models.MatchAny(any=values))
        for name, values in normalise(filters, case_sensitive).items()
        if name != skip
    ]
    return models.Filter(must=must) if must else None


def id_filter(models: Any, id_field: str, ids: list[int]) -> Any:
    return models.Filter(
        must=[models.FieldCondition(key=id_field, match=models.MatchAny(any=list(ids)))]
    )


def normalise(filters: dict[str, list[str]], case_sensitive: set[str]) -> dict[str, list[str]]:
    """Lower-cased values except for case-sensitive fields; empty filters dropped."""
    return {
        name: values if name in case_sensitive else [v.lower() for v in values]
        for name, values in filters.items()
        if values
    }
