"""Keyword search backends that run as servers (the embedded one is learnflow.stores.tantivy_index).

`opensearch` is MIT Learn's production engine: one backing index per resource type behind
aliases, content files as child documents, and MIT Learn's query semantics
(reference/mit-learn.md §4). `opensearch_mapping` holds its analyzers, mappings and the pure
query builders.
"""
