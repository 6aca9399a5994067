"""OCW site data (the `courses/<slug>/` tree OCW Studio publishes to S3) into course fields and
content files, as MIT Learn's `etl/ocw.py` does, but pure: it reads through a listing and a reader
callable, so the same code serves a local directory, a dict in tests, or an S3 activity.

* `<prefix>data.json` -> course fields (readable_id `{primary_course_number}+{slug(term)}_{year}`,
  run_id = legacy_uid or site_uid without dashes, ...);
* `<prefix>pages/**/data.json` -> page content files (content = the page's `content`);
* `<prefix>resources/**/data.json` -> file/pdf/video content files; the file's text (a video's
  transcript) comes from the extractor when its extension is one of the 16 text types.
Content-file keys are the S3 path prefix of the `data.json` (MIT Learn's key).
"""

from __future__ import annotations

import ast
import hashlib
import json
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlparse

from learnflow.models import ContentFile
from learnflow.textextract import TextExtractionError, TextExtractor
from sources.archives.olx import VALID_TEXT_FILE_TYPES, FileFailure, PreviousFiles

OCW_BASE_URL = "https://ocw.mit.edu/"
CONTENT_TYPE_PAGE = "page"
CONTENT_TYPE_FILE = "file"
CONTENT_TYPE_PDF = "pdf"
CONTENT_TYPE_VIDEO = "video"
SKIPPED_TITLES = frozenset({"3play caption file", "3play pdf file"})

Reader = Callable[[str], bytes | None]


@dataclass
class OcwResult:
    course: dict[str, Any] | None
    files: list[ContentFile] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)
    extractor_calls: int = 0
    reused: int = 0


def directory_tree(root: str | Path) -> tuple[list[str], Reader]:
    """(all file paths relative to `root`, reader) for a local copy of the bucket."""
    base = Path(root)
    paths = sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())

    def read(path: str) -> bytes | None:
        target = (base / path).resolve()
        if base.resolve() not in target.parents or not target.is_file():
            return None
        return target.read_bytes()

    return paths, read


def mapping_tree(files: Mapping[str, bytes]) -> tuple[list[str], Reader]:
    return sorted(files), files.get


def _slugify(value: str) -> str:
    value = re.sub(r"[^\w\s-]", "", value.lower())
    return re.sub(r"[-\s]+", "-", value).strip("-_")


def _load_json(read: Reader, path: str) -> dict[str, Any]:
    data = read(path)
    if data is None:
        raise FileNotFoundError(path)
    parsed = json.loads(data)
    if not isinstance(parsed, dict):
        raise ValueError(f"{path} is not a JSON object")
    return parsed


def _maybe_literal(value: Any) -> Any:
    """Some exports store dicts as Python reprs (`"{'archive_url': ''}"`)."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return {}
    return value or {}


def course_numbers(primary: str, extra: str | None) -> list[dict[str, Any]]:
    extras = [n.strip() for n in (extra or "").split(",") if n.strip()]
    numbers = []
    for i, value in enumerate([primary, *extras]):
        dept = re.match(r"^([0-9A-Za-z\-]+)\.", value)
        single_digit = bool(dept and dept.group(1).isdigit() and len(dept.group(1)) == 1)
        numbers.append(
            {
                "value": value,
                "listing_type": "primary" if i == 0 else "cross-listed",
                "primary": i == 0,
                "sort_coursenum": f"0{value}" if single_digit else value,
            }
        )
    return numbers


def transform_course(
    data: Mapping[str, Any], *, url_path: str, base_url: str = OCW_BASE_URL
) -> dict[str, Any] | None:
    """Course fields from the site's `data.json` (None when it has neither uid)."""
    uid = data.get("legacy_uid") or data.get("site_uid")
    if not uid:
        return None
    run_id = uid.replace("-", "")
    term, year = data.get("term"), data.get("year")
    readable_id = (
        f"{data['primary_course_number']}"
        f"{f'+{_slugify(term)}' if term else ''}{f'_{year}' if year else ''}"
    )
    url = urljoin(base_url, url_path.strip("/") + "/")
    image_meta = _maybe_literal(data.get("course_image_metadata"))
    image_src = data.get("image_src")
    image = None
    if image_src:
        image = {
            "url": urljoin(base_url, image_src),
            "description": image_meta.get("description"),
            "alt": (image_meta.get("image_metadata") or {}).get("image-alt"),
        }
    mit_learn_topics = data.get("mit_learn_topics") or []
    ocw_topics = sorted({t for group in data.get("topics") or [] for t in group})
    instructors = [
        {
            "full_name": i.get("title")
            or " ".join(p for p in (i.get("first_name"), i.get("last_name")) if p),
            "first_name": i.get("first_name") or None,
            "last_name": i.get("last_name") or None,
        }
        for i in data.get("instructors") or []
        if isinstance(i, dict)
    ]
    description = data.get("course_description_html") or data.get("course_description") or ""
    return {
        "readable_id": readable_id,
        "platform": "ocw",
        "etl_source": "ocw",
        "offered_by": "ocw",
        "resource_type": "course",
        "title": data.get("course_title") or "",
        "description": description.strip(),
        "url": url,
        "image": image,
        "departments": list(data.get("department_numbers") or []),
        "course_features": list(data.get("learning_resource_types") or []),
        "topics": sorted({t for group in mit_learn_topics for t in group}),
        "ocw_topics": ocw_topics,
        "course_numbers": course_numbers(
            data["primary_course_number"], data.get("extra_course_numbers")
        ),
        "license_cc": True,
        "availability": "anytime",
        "format": ["asynchronous"],
        "pace": ["self_paced"],
        "delivery": ["online"],
        "published": True,
        # The unpublish webhook names a site by its site_uid alone; a course whose run id came
        # from its legacy_uid is found through this (MIT Learn cannot find those).
        "details": {"site_uid": data.get("site_uid")} if data.get("site_uid") else {},
        "runs": [
            {
                "run_id": run_id,
                "title": data.get("course_title") or "",
                "url": url,
                "semester": term or None,
                "year": int(year) if str(year or "").isdigit() else None,
                "level": list(data.get("level") or []),
                "instructors": instructors,
                "published": True,
            }
        ],
    }


def content_type_for(file_type: str | None) -> str:
    if not file_type:
        return CONTENT_TYPE_FILE
    if file_type.startswith("video/"):
        return CONTENT_TYPE_VIDEO
    if file_type == "application/pdf":
        return CONTENT_TYPE_PDF
    return CONTENT_TYPE_FILE


def transform_page(data_path: str, page: Mapping[str, Any], base_url: str) -> ContentFile:
    key = data_path.rsplit("data.json", 1)[0]
    return ContentFile(
        key=key,
        title=page.get("title"),
        content_title=page.get("title"),
        description=page.get("description"),
        url=urljoin(base_url, urlparse(key).path.lstrip("/")),
        content_type=CONTENT_TYPE_PAGE,
        content=page.get("content") or "",
        source_path=data_path,
        published=True,
    )


def _bucket_path(file_ref: str) -> str:
    """A resource's `file` (URL or path) as a bucket path `courses/...` (unquoted)."""
    path = urlparse(file_ref).path if "://" in file_ref else file_ref
    if not path.lstrip("/").startswith("courses") and "courses/" in path:
        path = "courses/" + path.split("courses/", 1)[1]
    return unquote(path.lstrip("/"))


def read_ocw_site(
    paths: Iterable[str],
    read: Reader,
    course_prefix: str,
    *,
    extractor: TextExtractor | None = None,
    base_url: str = OCW_BASE_URL,
    previous: PreviousFiles | None = None,
    overwrite: bool = False,
) -> OcwResult:
    """Course fields plus page/resource content files of one OCW site (`courses/<slug>/`).

    Without an extractor, files get no text. `previous` maps content-file keys to the stored
    `(archive_checksum, content, title)`: a file whose md5 is unchanged reuses its text.
    """
    prefix = course_prefix.strip("/") + "/"
    previous = previous or {}
    result = OcwResult(course=None)
    try:
        course_data = _load_json(read, prefix + "data.json")
        result.course = transform_course(course_data, url_path=prefix, base_url=base_url)
    except (FileNotFoundError, ValueError) as exc:
        result.failures.append(FileFailure(prefix, f"course data.json: {exc}"))
        return result
    run_id = result.course["runs"][0]["run_id"] if result.course else None
    all_paths = sorted(paths)

    for path in all_paths:
        if not (path.startswith(prefix + "pages/") and path.endswith("/data.json")):
            continue
        try:
            page = transform_page(path, _load_json(read, path), base_url)
            result.files.append(page.model_copy(update={"run_id": run_id}))
        except (FileNotFoundError, ValueError) as exc:
            result.failures.append(FileFailure(path.rsplit("data.json", 1)[0], str(exc), path))

    for path in all_paths:
        if not (path.startswith(prefix + "resources/") and path.endswith("/data.json")):
            continue
        key = path.rsplit("data.json", 1)[0]
        try:
            resource = _load_json(read, path)
            content_file = _transform_resource(
                key, path, resource, read, extractor, base_url, previous, overwrite, result
            )
        except (FileNotFoundError, ValueError, TextExtractionError) as exc:
            result.failures.append(FileFailure(key, f"{type(exc).__name__}: {exc}", path))
            continue
        if content_file is not None:
            result.files.append(content_file.model_copy(update={"run_id": run_id}))
    return result


def _transform_resource(
    key: str,
    data_path: str,
    data: Mapping[str, Any],
    read: Reader,
    extractor: TextExtractor | None,
    base_url: str,
    previous: PreviousFiles,
    overwrite: bool,
    result: OcwResult,
) -> ContentFile | None:
    title = data.get("title")
    file_type = data.get("file_type")
    kind = data.get("resourcetype") or data.get("resource_type")
    youtube_id = image_src = None
    if kind == "Video":
        video_files = _maybe_literal(data.get("video_files"))
        video_meta = _maybe_literal(data.get("video_metadata"))
        text_ref = video_files.get("video_transcript_file") or data.get("transcript_file") or ""
        youtube_id = video_meta.get("youtube_id") or None
        image_src = (
            f"https://i.ytimg.com/vi/{youtube_id}/hqdefault.jpg"
            if youtube_id
            else data.get("thumbnail_file")
        )
        extension = PurePosixPath(data.get("file") or video_files.get("archive_url") or "").suffix
        content_type = CONTENT_TYPE_VIDEO
    else:
        text_ref = data.get("file") or ""
        extension = PurePosixPath(urlparse(text_ref).path).suffix
        content_type = content_type_for(file_type)
    if title in SKIPPED_TITLES or not text_ref:
        return None

    content, checksum = "", None
    text_path = _bucket_path(text_ref)
    text_ext = posixpath.splitext(text_path)[1].lower()
    if text_ext in VALID_TEXT_FILE_TYPES:
        blob = read(text_path)
        if blob is None:
            raise FileNotFoundError(f"file {text_path} not in the site data")
        checksum = hashlib.md5(blob).hexdigest()  # noqa: S324 - change detection, as MIT Learn
        stored = previous.get(key)
        if stored is not None and stored[0] == checksum and not overwrite:
            content = stored[1]
            result.reused += 1
        elif extractor is not None:
            result.extractor_calls += 1
            content = extractor.extract(blob, posixpath.basename(text_path), None).text.strip()

    return ContentFile(
        key=key,
        title=title,
        content_title=title,
        description=data.get("description") or data.get("content") or None,
        url=urljoin(base_url, urlparse(key).path.lstrip("/")),
        image_src=image_src,
        file_type=file_type,
        content_type=content_type,
        file_extension=extension or None,
        content=content,
        content_tags=list(data.get("learning_resource_types") or []),
        source_path=text_path,
        archive_checksum=checksum,
        youtube_id=youtube_id,
        published=True,
    )
