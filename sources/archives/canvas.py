"""Canvas `.imscc` course exports: course metadata, the published-item rules, content files.

Follows MIT Learn's `canvas_utils.get_published_items` (union of the routes below), reading the
export's own metadata files:
* `module_meta.xml`: module items with `workflow_state=active` publish their resource's files;
* `imsmanifest.xml` webcontent under `web_resources/`: published unless hidden/locked (or
  date-locked) in `files_meta.xml`, or inside a hidden/locked folder, or the Files tab (id 11)
  is hidden in `course_settings.xml`;
* HTML pages (`<meta name="workflow_state">`) and assignments (`assignment_settings.xml`):
  active/published, not restricted to non-student roles; the syllabus only if public; files the
  published pages link with `$IMS-CC-FILEBASE$` are published too;
* an optional URL config (the `.metadata.json` beside the export) can hide items and gives URLs.
Pure apart from reading the archive; "now" for lock dates is a parameter.
"""

from __future__ import annotations

import json
import posixpath
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus
from zoneinfo import ZoneInfo

from learnflow.models import ContentFile
from learnflow.schedules import archive_schedule
from learnflow.textextract import TextExtractor
from sources.archives.checksum import canvas_archive_checksum
from sources.archives.olx import FileFailure, PreviousFiles, previous_lookup, walk_olx
from sources.archives.safe_extract import ExtractionLimits, MemberTooLargeError, safe_extract
from sources.archives.spec import ArchiveSource

NS = {
    "c": "http://canvas.instructure.com/xsd/cccv1p0",
    "cp": "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1",
}
EASTERN = ZoneInfo("America/New_York")  # Canvas export dates are US/Eastern wall-clock times
FILES_TAB_ID = 11
FILEBASE = "$IMS-CC-FILEBASE$"
IGNORED_FILES = frozenset(
    {
        "course_settings.xml",
        "context.xml",
        "files_meta.xml",
        "module_meta.xml",
        "imsmanifest.xml",
        "assignment_settings.xml",
    }
)

Reader = Callable[[str], bytes | None]


@dataclass(frozen=True)
class CanvasCourse:
    course_folder: str
    course_code: str | None
    title: str
    readable_id: str
    run_id: str
    url: str | None = None
    start_at: datetime | None = None
    conclude_at: datetime | None = None


@dataclass(frozen=True)
class PublishedItem:
    path: str
    title: str | None
    kind: str  # module | file | page | assignment | syllabus | embedded


@dataclass
class CanvasResult:
    course: CanvasCourse
    checksum: str
    published: dict[str, PublishedItem]
    files: list[ContentFile] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)
    extractor_calls: int = 0
    empty: dict[str, str] = field(default_factory=dict)  # textless keys -> archive_checksum

    def previous(self) -> dict[str, tuple[str | None, str, str | None]]:
        """This result as the `previous` lookup of the next run."""
        return previous_lookup(self.files, self.empty)


# -- small XML helpers ----------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml(data: bytes | None) -> ET.Element | None:
    if not data:
        return None
    try:
        return ET.fromstring(data)  # noqa: S314
    except ET.ParseError:
        return None


def _child_text(elem: ET.Element, name: str) -> str:
    for child in elem:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return ""


def _is_true(value: Any) -> bool:
    return str(value).strip().lower() == "true"


def _parse_dt(value: str | None) -> datetime | None:
    if not value or value.lower() == "nil":
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=EASTERN)


def is_date_locked(lock_at: str | None, unlock_at: str | None, now: datetime) -> bool:
    """Locked when `now` is before unlock_at or after lock_at (naive dates are US/Eastern)."""
    unlock = _parse_dt(unlock_at)
    lock = _parse_dt(lock_at)
    return bool((unlock and now < unlock) or (lock and now > lock))


# -- course metadata ------------------------------------------------------------------------


def parse_course_settings(read: Reader) -> dict[str, Any]:
    """Every element of `course_settings.xml` by local name; `tab_configuration` keyed by id."""
    root = _xml(read("course_settings/course_settings.xml"))
    if root is None:
        return {}
    settings: dict[str, Any] = {}
    for node in root.iter():
        tag = _local(node.tag)
        value: Any = node.text
        if tag == "tab_configuration" and node.text:
            try:
                value = {tab.get("id"): tab for tab in json.loads(node.text)}
            except (ValueError, AttributeError):
                value = {}
        settings[tag] = value
    return settings


def parse_context(read: Reader) -> dict[str, str]:
    root = _xml(read("course_settings/context.xml"))
    if root is None:
        return {}
    keys = ("course_id", "root_account_id", "canvas_domain", "root_account_name")
    return {k: v for k in keys if (v := _child_text(root, k))}


def course_info(read: Reader, course_folder: str) -> CanvasCourse:
    """Title, `readable_id = {course_folder}-{course_code}`, run id `{readable_id}+canvas`."""
    settings = parse_course_settings(read)
    context = parse_context(read)
    code = (settings.get("course_code") or "").strip() or None
    readable_id = f"{course_folder}-{code}"
    title = (settings.get("title") or "").strip() or f"canvas course {course_folder}"
    url = None
    if context.get("canvas_domain") and context.get("course_id"):
        url = f"https://{context['canvas_domain']}/courses/{context['course_id']}/"
    return CanvasCourse(
        course_folder=course_folder,
        course_code=code,
        title=title,
        readable_id=readable_id,
        run_id=f"{readable_id}+canvas",
        url=url,
        start_at=_parse_dt(settings.get("start_at")),
        conclude_at=_parse_dt(settings.get("conclude_at")),
    )


# -- manifest and metadata files ------------------------------------------------------------


def parse_manifest(read: Reader) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Resources by identifier, and organization item titles by identifierref."""
    root = _xml(read("imsmanifest.xml"))
    resources: dict[str, dict[str, Any]] = {}
    titles: dict[str, str] = {}
    if root is None:
        return resources, titles
    for res in root.iterfind(".//cp:resource", NS):
        ident = res.get("identifier")
        if not ident:
            continue
        role = None
        for elem in res.iter():
            if _local(elem.tag) == "intendedEndUserRole":
                role = _child_text(elem, "value") or (elem.text or "").strip() or None
        resources[ident] = {
            "identifier": ident,
            "type": res.get("type"),
            "href": res.get("href"),
            "files": [f.get("href") for f in res.iterfind("cp:file", NS) if f.get("href")],
            "intendeduse": res.get("intendeduse"),
            "role": role,
        }
    for item in root.iterfind(".//cp:item[@identifierref]", NS):
        title = item.find("cp:title", NS)
        if title is not None and title.text:
            titles[item.get("identifierref", "")] = title.text.strip()
    return resources, titles


def parse_files_meta(read: Reader) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """(`files` by identifier, `folders` by path) from `files_meta.xml`."""
    root = _xml(read("course_settings/files_meta.xml"))
    files: dict[str, dict[str, str]] = {}
    folders: dict[str, dict[str, str]] = {}
    if root is None:
        return files, folders
    for elem in root.iter():
        tag = _local(elem.tag)
        if tag not in ("file", "folder"):
            continue
        meta = {_local(c.tag): (c.text or "").strip() for c in elem}
        if tag == "file" and elem.get("identifier"):
            files[elem.get("identifier", "")] = meta
        elif tag == "folder" and elem.get("path"):
            folders[elem.get("path", "").strip("/")] = meta
    return files, folders


def _meta_hidden(meta: Mapping[str, str], now: datetime) -> bool:
    if _is_true(meta.get("hidden")) or _is_true(meta.get("locked")):
        return True
    if is_date_locked(meta.get("lock_at"), meta.get("unlock_at"), now):
        return True
    return meta.get("visibility", "inherit") not in ("inherit", "course", "institution", "public")


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.meta: dict[str, str] = {}
        self._in_title = False
        self.title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href", "").startswith(FILEBASE):
            href = a["href"].split("?", 1)[0].replace(FILEBASE, "web_resources", 1)
            self.links.append(posixpath.normpath(unquote(href)))
        elif tag == "meta" and a.get("name"):
            self.meta[a["name"]] = a.get("content", "")
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def _parse_html(data: bytes | None) -> _LinkParser:
    parser = _LinkParser()
    if data:
        parser.feed(data.decode("utf-8", "replace"))
        parser.close()
    return parser


def _assignment_state(data: bytes | None, now: datetime) -> tuple[bool, str]:
    root = _xml(data)
    if root is None:
        return False, ""
    title = _child_text(root, "title")
    published = (
        _child_text(root, "workflow_state") == "published"
        and _child_text(root, "only_visible_to_overrides") != "true"
        and _child_text(root, "hide_in_gradebook") != "true"
        and _child_text(root, "module_locked") != "true"
        and not is_date_locked(_child_text(root, "lock_at"), _child_text(root, "unlock_at"), now)
    )
    return published, title


def parse_url_config(data: bytes | str) -> dict[str, dict[str, Any]]:
    """The `.metadata.json` beside an export: files keyed by path under their top folder,
    pages and assignments by name/title; each item gets a normalised `url`."""
    raw = json.loads(data)
    config: dict[str, dict[str, Any]] = {}
    for item in raw.get("course_files", []):
        path = item.get("file_path", "")
        key = unquote_plus(path[len(path.split("/")[0]) :]) if "/" in path else path
        config[key] = item
    for item in raw.get("assignments", []) + raw.get("pages", []):
        key = item.get("name", item.get("title"))
        if key:
            config[key] = {**item, "url": item.get("html_url")}
    return config


def _url_key(item: PublishedItem) -> str | None:
    if "web_resources" in item.path:
        return item.path.split("web_resources", 1)[-1]
    return item.title


def _config_visible(conf: Mapping[str, Any] | None, now: datetime) -> bool:
    if not conf:
        return True
    folder = conf.get("folder") or {}
    return not (
        not conf.get("published", True)
        or is_date_locked(conf.get("lock_at"), conf.get("unlock_at"), now)
        or conf.get("hidden")
        or conf.get("locked")
        or folder.get("hidden")
        or folder.get("locked")
    )


def published_items(
    read: Reader,
    *,
    now: datetime | None = None,
    url_config: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, PublishedItem]:
    """Archive paths students can see, with their titles (see the module docstring)."""
    now = now or datetime.now(UTC)
    url_config = url_config or {}
    settings = parse_course_settings(read)
    tabs = settings.get("tab_configuration") or {}
    files_tab_visible = not (tabs.get(FILES_TAB_ID) or {}).get("hidden", False)
    resources, item_titles = parse_manifest(read)
    files_meta, folders_meta = parse_files_meta(read)
    syllabus_public = not (
        str(settings.get("public_syllabus", "true")).lower() == "false"
        and str(settings.get("public_syllabus_to_auth", "true")).lower() == "false"
    )

    candidates: list[PublishedItem] = []
    embedded: list[str] = []

    # 1. module items with workflow_state=active
    module_root = _xml(read("course_settings/module_meta.xml"))
    if module_root is not None:
        for module in module_root.iterfind(".//c:module", NS):
            if _child_text(module, "workflow_state") not in ("active", ""):
                continue
            for item in module.iterfind("c:items/c:item", NS):
                if _child_text(item, "workflow_state") != "active":
                    continue
                res = resources.get(_child_text(item, "identifierref"))
                for path in (res or {}).get("files", []):
                    candidates.append(PublishedItem(path, _child_text(item, "title"), "module"))

    # 2. web_resources files, minus hidden/locked files and folders, if the Files tab is visible
    for ident, res in resources.items():
        href = res.get("href") or ""
        if res.get("type") != "webcontent" or not href.startswith("web_resources/"):
            continue
        meta = files_meta.get(ident, {})
        folder = posixpath.dirname(href.removeprefix("web_resources/"))
        hidden_folder = any(
            folder == path or folder.startswith(path + "/")
            for path, fmeta in folders_meta.items()
            if _meta_hidden(fmeta, now)
        )
        if _meta_hidden(meta, now) or hidden_folder or not files_tab_visible:
            continue
        title = meta.get("display_name") or posixpath.basename(href)
        candidates.append(PublishedItem(href, title, "file"))

    # 3. HTML pages and assignments by their own workflow state
    for res in resources.values():
        href = res.get("href") or ""
        if not href.endswith(".html"):
            continue
        page = _parse_html(read(href))
        settings_file = next(
            (f for f in res.get("files", []) if f.endswith("assignment_settings.xml")), None
        )
        if settings_file:
            ok, title = _assignment_state(read(settings_file), now)
            kind = "assignment"
        else:
            ok = page.meta.get("workflow_state") in ("active", "published")
            title, kind = page.title.strip(), "page"
        role = (res.get("role") or "").lower()
        if role and role != "student":
            ok = False
        if res.get("intendeduse") == "syllabus":
            ok, kind = syllabus_public, "syllabus"
        if ok:
            title = title or item_titles.get(res["identifier"])
            candidates.append(PublishedItem(href, title, kind))
            embedded.extend(page.links)

    published: dict[str, PublishedItem] = {}
    for item in candidates:
        if posixpath.basename(item.path) in IGNORED_FILES or item.path in published:
            continue
        if not _config_visible(url_config.get(_url_key(item) or ""), now):
            continue
        published[item.path] = item
    for path in embedded:
        if path not in published and posixpath.basename(path) not in IGNORED_FILES:
            published[path] = PublishedItem(path, None, "embedded")
    return published


# -- the archive ----------------------------------------------------------------------------


def zip_reader(zf: zipfile.ZipFile, max_bytes: int) -> Reader:
    """Read small metadata members from an open zip, refusing any larger than `max_bytes`."""
    names = set(zf.namelist())

    def read(name: str) -> bytes | None:
        if name not in names:
            return None
        info = zf.getinfo(name)
        if info.file_size > max_bytes:
            raise MemberTooLargeError(f"metadata member over {max_bytes} bytes", name)
        with zf.open(info) as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise MemberTooLargeError(f"metadata member over {max_bytes} bytes", name)
        return data

    return read


def canvas_content_files(
    archive: str | Path,
    course_folder: str,
    *,
    extractor: TextExtractor,
    previous: PreviousFiles | None = None,
    url_config: Mapping[str, Mapping[str, Any]] | None = None,
    overwrite: bool = False,
    now: datetime | None = None,
    limits: ExtractionLimits | None = None,
    metadata_max_bytes: int = 32 * 1024 * 1024,
    max_workers: int = 1,
) -> CanvasResult:
    """Course metadata, checksum and the published content files of one `.imscc` export."""
    limits = limits or ExtractionLimits()
    with zipfile.ZipFile(archive) as zf:
        read = zip_reader(zf, min(metadata_max_bytes, limits.max_member_bytes))
        course = course_info(read, course_folder)
        published = published_items(read, now=now, url_config=url_config)
    checksum = canvas_archive_checksum(
        archive, [(p, i.title) for p, i in published.items()], url_config
    )
    titles = {p: i.title for p, i in published.items() if i.title}
    urls: dict[str, str] = {}
    for path, item in published.items():
        conf = (url_config or {}).get(_url_key(item) or "") or {}
        if conf.get("url"):
            urls[path] = str(conf["url"])
    with safe_extract(archive, limits) as extracted:
        walked = walk_olx(
            extracted.root,
            course.run_id,
            extractor=extractor,
            base_url=None,
            previous=previous,
            overwrite=overwrite,
            source_root=extracted.root,
            include=published.__contains__,
            titles=titles,
            urls=urls,
            max_workers=max_workers,
        )
    return CanvasResult(
        course=course,
        checksum=checksum,
        published=published,
        files=walked.files,
        failures=walked.failures,
        extractor_calls=walked.extractor_calls,
        empty=walked.empty,
    )


# Canvas course exports (`.imscc`) in the archive bucket: an archive source with no catalog API.
ARCHIVE = ArchiveSource(
    "canvas", "canvas", "canvas", "canvas_course_bucket_prefix", None, "canvas_folder"
)

# Weekly (`learn schedules sync` creates it; cron in UTC).
SCHEDULES = (archive_schedule("canvas", "0 5 * * 0", timedelta(days=7)),)
