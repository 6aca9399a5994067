"""The custom search attributes operators filter on in the Temporal UI: defined once, here."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

SOURCE = SearchAttributeKey.for_keyword("Source")
OUTCOME = SearchAttributeKey.for_keyword("Outcome")  # ok | skipped | prune_refused | failed_partial
UPSERTED = SearchAttributeKey.for_int("UpsertedCount")
UNPUBLISHED = SearchAttributeKey.for_int("UnpublishedCount")
QUARANTINED = SearchAttributeKey.for_int("QuarantinedCount")

ALL = (SOURCE, OUTCOME, UPSERTED, UNPUBLISHED, QUARANTINED)


def for_source(source: str | None) -> TypedSearchAttributes:
    """A child's start attributes: its parent's source, so the UI's `Source = "x"` filter lists
    a source's whole run (the index and embed passes with the ingestion that started them)."""
    pairs = [SearchAttributePair(SOURCE, source)] if source else []
    return TypedSearchAttributes(pairs)


_CLI_TYPES = {
    "KEYWORD": "Keyword",
    "INT": "Int",
    "TEXT": "Text",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
}


def _cli_type(key: SearchAttributeKey) -> str:
    return _CLI_TYPES[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]


# `temporal server start-dev --search-attribute Name=Type ...`: registered when the server starts.
SEARCH_ATTRIBUTE_CLI_FLAGS: list[str] = [
    arg for key in ALL for arg in ("--search-attribute", f"{key.name}={_cli_type(key)}")
]


async def register(client) -> list[str]:
    """Add any of our search attributes the server lacks; returns the names added.

    The dev server gets them as start flags; a production server (docker-compose, Postgres
    persistence) starts without them, so every worker calls this at start. Idempotent.
    """
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        key.name: key.indexed_value_type for key in ALL if key.name not in listed.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)
