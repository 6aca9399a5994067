"""`catalog.resource_row`: the DB-ready row a transform batch carries must store exactly what the
model path stored (same content hash, same data), or every re-run after a deploy rewrites rows."""

from __future__ import annotations

import hashlib
import json

from learnflow.db.catalog import resource_row, resource_rows
from sources import get_source
from sources.edx_demo import edx_catalog
from sources.mitxonline_demo import mitxonline_catalog


def _resources():
    courses, programs = mitxonline_catalog(24)
    mx = get_source("mitxonline")
    out = mx.transform_payload("courses", {"results": courses}, [])
    out_p = mx.transform_payload("programs", {"results": programs}, [{"results": courses}])
    ecourses, eprograms = edx_catalog(16)
    edx = get_source("edx")
    out_e = edx.transform_payload("courses", {"results": ecourses}, [])
    out_ep = edx.transform_payload("programs", {"results": eprograms}, [])
    return out.resources + out_p.resources + out_e.resources + out_ep.resources


def test_rows_match_the_models():
    resources = _resources()
    assert any(r.relationships for r in resources) and any(len(r.runs) > 1 for r in resources)
    for resource, row in zip(resources, resource_rows(resources), strict=True):
        data = resource.model_dump(mode="json", exclude={"content_files"})
        assert row["content_hash"] == resource.content_hash()
        # the canonical text (now mostly orjson's) is json.dumps' byte for byte, as it always was
        stdlib = json.dumps(data, sort_keys=True, separators=(",", ":"))
        assert row["data"] == stdlib
        assert row["content_hash"] == hashlib.sha256(stdlib.encode()).hexdigest()
        assert (row["platform"], row["readable_id"], row["resource_type"]) == (
            resource.platform,
            resource.readable_id,
            str(resource.resource_type),
        )
        assert [r[0] for r in row["runs"]] == [r.run_id for r in resource.runs]
        assert [json.loads(r[4]) for r in row["runs"]] == data["runs"]
        assert [r[1] for r in row["relationships"]] == [
            rel.child.readable_id for rel in resource.relationships
        ]


def test_rows_survive_the_batch_blob():
    """A batch stores rows as JSON; what comes back is what goes to COPY (tuples become lists)."""
    (resource, *_) = _resources()
    row = resource_row(resource)
    back = json.loads(json.dumps(row))
    assert back["content_hash"] == row["content_hash"] and back["data"] == row["data"]
    assert [tuple(r) for r in back["runs"]] == row["runs"]
