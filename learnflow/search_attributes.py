"""The custom search attributes operators filter on in the Temporal UI: defined once, here."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

SOURCE = SearchAttributeKey.for_keyword("Source")
OUTCOME = SearchAttributeKey.for_keyword("Outcome")  # ok | skipped | prune_refused | failed_partial
UPSERTED = SearchAttributeKey.for_int("UpsertedCount")
UNPUBLISHED = SearchAttributeKey.for_int("UnpublishedCount")
QUARANTINED = SearchAttributeKey.for_int("QuarantinedCount")

ALL = (SOURCE, OUTCOME, UPSERTED, UNPUBLISHED, QUARANTINED)

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
