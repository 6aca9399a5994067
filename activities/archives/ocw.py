"""OCW sites: a site's objects in the OCW bucket (its `data.json`, pages and resources) into the
course resource and its content files. The site checksum (every object's key, ETag and size)
skips an unchanged site; per-file md5s reuse unchanged text; missing files are soft-retired."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Any

from activities.archives.common import failures_out, list_objects, s3_client, text_extractor
from activities.archives.load import Loading
from activities.progress import heartbeating
from learnflow.contracts.archives import ArchiveIngestResult, OcwSiteInput
from learnflow.models import Department, Resource, Topic
from sources.archives.ocw import read_ocw_site, transform_course

_OCW_PREFIX = re.compile(r"^courses/[A-Za-z0-9._~+-]{1,300}$")


def ocw_prefix(raw: str) -> str | None:
    """`courses/<slug>` from a webhook prefix (`courses/<slug>/`, `/courses/<slug>`), or None."""
    value = raw.strip().strip("/")
    if not value.startswith("courses/"):
        value = f"courses/{value}"
    return value if _OCW_PREFIX.match(value) and ".." not in value.split("/") else None


def ocw_resource(course: dict[str, Any]) -> Resource:
    """The course fields `transform_course` returns, as the catalog's Resource."""
    from learnflow.reference import reference_data

    ref = reference_data()
    data = dict(course)
    data["departments"] = [
        Department(department_id=d, name=ref.departments.get(d, d))
        for d in course.get("departments") or []
    ]
    data["topics"] = [Topic(name=t) for t in course.get("topics") or []]
    return Resource.model_validate(data)


def site_checksum(objects: dict[str, dict[str, Any]]) -> str:
    """Every object's key, ETag and size: a changed file changes it."""
    listing = sorted((k, o.get("ETag", ""), o.get("Size", 0)) for k, o in objects.items())
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


async def ingest_ocw(req: OcwSiteInput) -> ArchiveIngestResult:
    """One OCW site: course resource + page/resource content files (md5 reuse, soft retire)."""
    prefix = ocw_prefix(req.prefix)
    result = ArchiveIngestResult(source="ocw", key=prefix or req.prefix, outcome="rejected")
    job = await Loading.start(prefix or req.prefix, req.overwrite, result)
    if prefix is None:
        return await job.reject("not an OCW site prefix (courses/<slug>)")
    s, cstore = job.s, job.cstore
    bucket = s.ocw_live_bucket
    s3 = s3_client()
    job.progress.stage = "list"
    async with heartbeating(job.progress):
        listed = await asyncio.to_thread(lambda: list(list_objects(s3, bucket, prefix + "/")))
        objects = {o["Key"]: o for o in listed}
        if prefix + "/data.json" not in objects:
            result.outcome, result.reason = "missing", f"no {prefix}/data.json in {bucket}"
            return result
        result.checksum = checksum = site_checksum(objects)

        def read(path: str) -> bytes | None:
            obj = objects.get(path)
            if obj is None:
                return None
            if int(obj.get("Size", 0)) > s.ocw_max_file_bytes:
                raise ValueError(f"{path} is larger than {s.ocw_max_file_bytes} bytes")
            return s3.get_object(Bucket=bucket, Key=path)["Body"].read()

        try:
            raw_course = json.loads(await asyncio.to_thread(read, prefix + "/data.json") or b"")
            course = transform_course(raw_course, url_path=prefix + "/", base_url=s.ocw_base_url)
        except (ValueError, KeyError, TypeError) as exc:
            return await job.reject(f"course data.json: {type(exc).__name__}: {exc}")
        if course is None:
            return await job.reject("course data.json has no legacy_uid or site_uid")
        try:
            resource = ocw_resource(course)
        except ValueError as exc:
            return await job.reject(f"course fields: {exc}")
        await job.upsert_course("ocw", resource)
        run_id = resource.runs[0].run_id
        run = await cstore.run_of("ocw", resource.readable_id, run_id)
        if run is None:  # pragma: no cover - upsert_resources just wrote it
            raise RuntimeError(f"OCW run {run_id} missing after upsert")
        result.run_id, result.readable_id, result.course_id = run_id, run.readable_id, prefix
        if await job.unchanged(run, checksum, record_key=False):
            return result

        previous = await cstore.previous_files(run.id)
        job.progress.stage, job.progress.checksum = "extract", checksum
        site = await asyncio.to_thread(
            read_ocw_site,
            sorted(objects),
            read,
            prefix,
            extractor=text_extractor(s),
            base_url=s.ocw_base_url,
            previous=previous,
            overwrite=req.overwrite,
        )
        result.extractor_calls = site.extractor_calls
        result.reused = site.reused
        result.failures = failures_out(site.failures)
        await job.load(run, site.files, {})
        await job.finish(run, {f.key for f in site.files}, {f.key for f in site.failures})
    return job.logged("ocw.loaded")
