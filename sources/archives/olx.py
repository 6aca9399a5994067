"""The OLX walker: an extracted course export in, `ContentFile` models out (MIT Learn §2 steps 5-7).

Keeps MIT Learn's rules: the 16 text extensions, paths containing `draft` skipped, edX keys
(`asset-v1:` for `static/`, else `block-v1:<run>+type@<folder>+block@<stem>`), jump-to URLs,
`.srt`/`.sjson` post-processing, the title priority and the per-file md5 (`archive_checksum`)
that lets an unchanged file reuse its stored text without calling the extractor.
Deliberate differences: AppleDouble `._*` files are skipped; `.sjson` is parsed from its bytes
(Tika adds nothing to JSON); `.srt`/`.vtt` cues are stripped line by line (MIT Learn's regex also
ate digits at line ends); a failing file is reported in `failures` instead of aborting the course.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import html
import json
import mimetypes
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from learnflow.models import ContentFile
from learnflow.textextract import ExtractedText, TextExtractionError, TextExtractor
from sources.archives.safe_extract import ExtractionLimits, safe_extract

VALID_TEXT_FILE_TYPES = frozenset(
    {
        ".doc", ".docx", ".htm", ".html", ".json", ".md", ".pdf", ".tex",
        ".ppt", ".pptx", ".rtf", ".sjson", ".srt", ".txt", ".vtt", ".xml",
    }
)  # fmt: skip
CONTENT_TYPE_FILE = "file"

# (archive_checksum, content, title) of the stored ContentFile, keyed by ContentFile.key.
PreviousFiles = Mapping[str, tuple[str | None, str, str | None]]


@dataclass(frozen=True)
class FileFailure:
    key: str
    reason: str
    source_path: str | None = None


@dataclass
class WalkResult:
    files: list[ContentFile] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)
    extractor_calls: int = 0
    reused: int = 0
    skipped_empty: int = 0
    duplicates: int = 0
    # key -> archive_checksum of files that gave no text: remember them so an unchanged re-run
    # does not send them to the extractor again (MIT Learn re-extracts them every time).
    empty: dict[str, str] = field(default_factory=dict)

    @property
    def failed_keys(self) -> list[str]:
        return [f.key for f in self.failures]

    def previous(self) -> dict[str, tuple[str | None, str, str | None]]:
        """This result as the `previous` lookup of the next run (kept files + empty ones)."""
        return previous_lookup(self.files, self.empty)


def previous_lookup(
    files: Iterable[ContentFile], empty: Mapping[str, str] | None = None
) -> dict[str, tuple[str | None, str, str | None]]:
    """Build `previous` from stored content files (and keys known to be textless)."""
    lookup: dict[str, tuple[str | None, str, str | None]] = {
        key: (checksum, "", None) for key, checksum in (empty or {}).items()
    }
    for cf in files:
        lookup[cf.key] = (cf.archive_checksum, cf.content, cf.content_title or cf.title)
    return lookup


# -- keys and URLs --------------------------------------------------------------------------


def edx_module_id(source_path: str, run_id: str) -> str:
    """`asset-v1:` key for `static/` files, else `block-v1:<run>+type@<folder>+block@<stem>`."""
    path = source_path.replace(" ", "_")
    parts = path.split("/")
    folder = parts[-2] if len(parts) > 1 else ""
    run = run_id.removeprefix("course-v1:")
    if folder == "static":
        return f"asset-v1:{run}+type@asset+block@{parts[-1]}"
    return f"block-v1:{run}+type@{folder}+block@{PurePosixPath(parts[-1]).stem}"


def is_uuid_like(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def url_for_module(
    module_id: str,
    *,
    base_url: str | None,
    url_run_id: str,
    transcript_videos: Mapping[str, str] | None = None,
) -> str | None:
    """Jump-to URL for uuid-like blocks, parent video for transcripts, `<base>/<asset>` else."""
    if not base_url or not module_id:
        return None
    base = base_url.rstrip("/")
    jump = f"{base}/courses/{url_run_id}/jump_to_id/"
    if module_id.startswith("asset"):
        video = (transcript_videos or {}).get(module_id)
        if video:
            return f"{jump}{video.split('@')[-1]}"
        return f"{base}/{module_id}"
    block = module_id.split("@")[-1]
    if module_id.startswith("block") and is_uuid_like(block):
        return f"{jump}{block}"
    return None


def video_transcript_map(olx_root: Path, run_id: str) -> dict[str, str]:
    """Map transcript asset keys to their parent video block key, from `video/*.xml`."""
    mapping: dict[str, str] = {}
    video_dir = olx_root / "video"
    if not video_dir.is_dir():
        return mapping
    for xml_path in sorted(video_dir.rglob("*.xml")):
        try:
            root = ET.fromstring(xml_path.read_bytes())  # noqa: S314
        except ET.ParseError:
            continue
        name = root.get("url_name") or xml_path.stem
        video_key = edx_module_id(f"video/{name}.xml", run_id)
        for transcript in root.iter("transcript"):
            src = transcript.get("src")
            if src:
                mapping[edx_module_id(f"static/{src}", run_id)] = video_key
    return mapping


# -- text post-processing and titles --------------------------------------------------------

_CUE_TIME = re.compile(
    r"^\s*(\d{1,2}:)?\d{2}:\d{2}[,.]\d{3}\s+-->\s+(\d{1,2}:)?\d{2}:\d{2}[,.]\d{3}.*$"
)


def text_from_srt(content: str) -> str:
    """Subtitle cue text only: no sequence numbers, timestamps or WEBVTT headers."""
    lines = content.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or _CUE_TIME.match(stripped):
            continue
        if stripped.isdigit() and i + 1 < len(lines) and _CUE_TIME.match(lines[i + 1].strip()):
            continue
        if stripped.startswith(("WEBVTT", "NOTE ", "STYLE", "X-TIMESTAMP")):
            continue
        kept.append(stripped)
    return " ".join(kept)


def text_from_sjson(content: str | bytes) -> str:
    """edX `.sjson` transcripts: the `text` list joined with spaces."""
    data = json.loads(content)
    texts = data.get("text", []) if isinstance(data, dict) else []
    return " ".join(str(t) for t in texts if t)


def prettify_filename(filename: str) -> str:
    words = re.split(r"[\s_\-]+", PurePosixPath(filename).stem)
    return " ".join(w[:1].upper() + w[1:] for w in words if w)


_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def document_title(data: bytes, extension: str) -> str | None:
    """XML root `display_name` or HTML `<title>`."""
    if extension == ".xml":
        try:
            root = ET.fromstring(data)  # noqa: S314
        except ET.ParseError:
            return None
        return (root.get("display_name") or "").strip() or None
    if extension in (".html", ".htm"):
        match = _HTML_TITLE.search(data[:65536])
        if match:
            title = html.unescape(match.group(1).decode("utf-8", "replace")).strip()
            return re.sub(r"\s+", " ", title) or None
    return None


def resolve_title(
    metadata_title: str | None,
    tika_title: str | None,
    doc_title: str | None,
    filename: str,
) -> str:
    """MIT Learn's priority: metadata title > Tika title > display_name/<title> > filename."""
    for candidate in (metadata_title, tika_title, doc_title):
        if candidate and candidate.strip():
            return candidate.strip()
    return prettify_filename(filename)


# -- the walk -------------------------------------------------------------------------------


def find_olx_root(extracted_root: Path) -> Path:
    """The course folder: where `course.xml` is, else the only real top-level directory."""
    if (extracted_root / "course.xml").is_file():
        return extracted_root
    dirs = sorted(
        p
        for p in extracted_root.iterdir()
        if p.is_dir() and not p.name.startswith(("._", "__MACOSX"))
    )
    for d in dirs:
        if (d / "course.xml").is_file():
            return d
    return dirs[0] if len(dirs) == 1 else extracted_root


def iter_olx_files(
    olx_root: Path, valid_extensions: Iterable[str] = VALID_TEXT_FILE_TYPES
) -> list[Path]:
    """Files to read: valid extension, no `draft` in the path, no AppleDouble `._*`."""
    valid = frozenset(valid_extensions)
    found = []
    for path in olx_root.rglob("*"):
        rel_dir = path.parent.relative_to(olx_root).as_posix()
        if "draft" in rel_dir or path.name.startswith("._") or path.is_symlink():
            continue
        if path.is_file() and path.suffix.lower() in valid:
            found.append(path)
    return sorted(found)


@dataclass
class _Job:
    path: Path
    source_path: str
    key: str
    extension: str
    checksum: str
    metadata_title: str | None
    sibling_title: str | None = None


def _file_md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - MIT Learn's archive_checksum, not security
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _extract_one(job: _Job, extractor: TextExtractor) -> tuple[ExtractedText, str | None]:
    """Text and the file's own title (display_name / <title>); bytes are read here, one file
    at a time, so a course's PDFs are never all in memory together."""
    data = job.path.read_bytes()
    doc_title = document_title(data, job.extension)
    if job.extension == ".sjson":
        return ExtractedText(text=text_from_sjson(data)), doc_title
    mime = mimetypes.types_map.get(job.extension)
    result = extractor.extract(data, job.path.name, mime)
    text = result.text.strip()
    if job.extension in (".srt", ".vtt"):
        text = text_from_srt(text)
    extracted = ExtractedText(
        text=text, title=result.title, metadata=result.metadata, ocr_used=result.ocr_used
    )
    return extracted, doc_title


def walk_olx(
    olx_root: str | Path,
    run_id: str,
    *,
    extractor: TextExtractor,
    base_url: str | None = None,
    url_run_id: str | None = None,
    previous: PreviousFiles | None = None,
    overwrite: bool = False,
    source_root: str | Path | None = None,
    include: Callable[[str], bool] | None = None,
    titles: Mapping[str, str] | None = None,
    urls: Mapping[str, str] | None = None,
    valid_extensions: Iterable[str] = VALID_TEXT_FILE_TYPES,
    max_workers: int = 1,
) -> WalkResult:
    """Walk an extracted OLX (or Canvas) tree and build one `ContentFile` per text file.

    `source_path` is relative to `source_root` (default: the OLX root's parent, as in MIT Learn,
    e.g. `course/about/overview.html`). `previous` maps keys to the stored
    `(archive_checksum, content, title)`: equal checksums reuse the text and skip the extractor.
    `include`, `titles` and `urls` (keyed by source_path) let Canvas restrict the walk to its
    published items and supply their titles and URLs. Empty texts are dropped, failures reported.
    """
    olx_root = Path(olx_root)
    src_root = Path(source_root) if source_root is not None else olx_root.parent
    previous = previous or {}
    titles = titles or {}
    urls = urls or {}
    transcripts = video_transcript_map(olx_root, run_id)
    result = WalkResult()
    pending: list[_Job] = []
    done: dict[str, tuple[str, str]] = {}  # key -> (content, title) for reused files

    candidates: dict[str, list[tuple[Path, str]]] = {}
    for path in iter_olx_files(olx_root, valid_extensions):
        source_path = path.relative_to(src_root).as_posix()
        if include is None or include(source_path):
            key = edx_module_id(source_path, run_id)
            candidates.setdefault(key, []).append((path, source_path))
    for key, options in candidates.items():
        # An OLX block is often `html/<id>.xml` (pointer with display_name) + `html/<id>.html`
        # (the body), both with one key. Keep the non-XML file; the XML lends its display_name.
        options.sort(key=lambda o: (o[0].suffix.lower() == ".xml", o[1]))
        path, source_path = options[0]
        result.duplicates += len(options) - 1
        sibling_title = None
        for other, _ in options[1:]:
            if other.suffix.lower() == ".xml" and sibling_title is None:
                try:
                    sibling_title = document_title(other.read_bytes(), ".xml")
                except OSError:
                    sibling_title = None
        try:
            checksum = _file_md5(path)
        except OSError as exc:
            result.failures.append(FileFailure(key, f"unreadable: {exc}", source_path))
            continue
        job = _Job(
            path,
            source_path,
            key,
            path.suffix.lower(),
            checksum,
            titles.get(source_path),
            sibling_title,
        )
        stored = previous.get(key)
        if stored is not None and stored[0] == checksum and not overwrite:
            result.reused += 1
            done[key] = (stored[1], stored[2] or "")
        pending.append(job)

    to_extract = [j for j in pending if j.key not in done]
    extracted: dict[str, tuple[ExtractedText, str | None] | Exception] = {}

    def run(job: _Job) -> tuple[str, tuple[ExtractedText, str | None] | Exception]:
        try:
            return job.key, _extract_one(job, extractor)
        except (TextExtractionError, ValueError, UnicodeDecodeError, OSError) as exc:
            return job.key, exc

    result.extractor_calls = sum(1 for j in to_extract if j.extension != ".sjson")
    if max_workers > 1 and len(to_extract) > 1:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max_workers) as pool:
            extracted.update(pool.map(run, to_extract))
    else:
        extracted.update(run(j) for j in to_extract)

    for job in pending:
        if job.key in done:
            content, title = done[job.key]
        else:
            outcome = extracted[job.key]
            if isinstance(outcome, Exception):
                reason = f"{type(outcome).__name__}: {outcome}"
                result.failures.append(FileFailure(job.key, reason, job.source_path))
                continue
            text, doc_title = outcome
            content = text.text
            title = resolve_title(
                job.metadata_title,
                text.title,
                doc_title or job.sibling_title,
                job.path.name,
            )
        if not content.strip():
            result.skipped_empty += 1
            result.empty[job.key] = job.checksum
            continue
        url = urls.get(job.source_path) or url_for_module(
            job.key,
            base_url=base_url,
            url_run_id=url_run_id or run_id,
            transcript_videos=transcripts,
        )
        result.files.append(
            ContentFile(
                key=job.key,
                run_id=run_id,
                title=title,
                content_title=title,
                url=url,
                file_type=mimetypes.types_map.get(job.extension),
                content_type=CONTENT_TYPE_FILE,
                file_extension=job.extension,
                content=content,
                edx_module_id=job.key,
                source_path=job.source_path,
                archive_checksum=job.checksum,
                published=True,
            )
        )
    return result


def extract_olx_archive(
    archive: str | Path,
    run_id: str,
    *,
    extractor: TextExtractor,
    base_url: str | None = None,
    url_run_id: str | None = None,
    previous: PreviousFiles | None = None,
    overwrite: bool = False,
    limits: ExtractionLimits | None = None,
    max_workers: int = 1,
) -> WalkResult:
    """Safely unpack an OLX `.tar.gz` and walk it; the temporary tree is always removed."""
    with safe_extract(archive, limits) as extracted:
        if not extracted.files:
            return WalkResult()
        olx_root = find_olx_root(extracted.root)
        return walk_olx(
            olx_root,
            run_id,
            extractor=extractor,
            base_url=base_url,
            url_run_id=url_run_id,
            previous=previous,
            overwrite=overwrite,
            source_root=extracted.root,
            max_workers=max_workers,
        )
