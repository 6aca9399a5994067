"""Catalog rows that tests load straight into Postgres (no source, no workflow)."""

from __future__ import annotations

from learnflow.models import Resource, ResourceType


def course(source: str, readable_id: str, title: str, description: str | None = None) -> Resource:
    """A published MITx Online course of `source`: what embedding and search tests need."""
    return Resource(
        readable_id=readable_id,
        platform="mitxonline",
        resource_type=ResourceType.course,
        etl_source=source,
        title=title,
        description=description,
    )
