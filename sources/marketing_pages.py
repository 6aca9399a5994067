"""Marketing pages: the public page of each course/program → a markdown ContentFile.

MIT Learn (`tasks.scrape_marketing_pages`, `site_scrapers/*`, reference/mit-learn.md §1.2) GETs
the resource's URL (or renders it in headless Chrome), turns the body into markdown with images
reduced to their alt text, and stores it as a ContentFile of the resource: file_type
`marketing_page`, file_extension `.md`, key = url = the resource URL. Here the HTML → markdown
step is markdownify (html2text is GPL), after dropping scripts, styles, navigation chrome and
hidden elements.

Kind `pages`: the payload is the page HTML (bytes) with its URL as context (a string, or a dict
with `url`), or — what the extractor stores — a JSON envelope `{"url": ..., "html": ...}`.
The output is `TransformOutput.content_files` (no resources): the loader attaches each file to
the published course/program whose `url` is the file's key.

Which pages: the extractor reads the catalog (`ctx.pool`) for every published course/program
whose url is http(s) on an allowed host — all of them, not only those lacking a page as MIT Learn
does. MIT Learn never re-scrapes a page it has, so an edited page stays stale forever; here a
page whose markdown did not change rewrites nothing (content checksum), so re-reading all of them
every 12 h costs one GET each and keeps pages current. Pages still lacking a file come first (a
fetch cut short covers the new ones), and `options["only_missing"] = "true"` restores MIT Learn's
rule, `options["etl_source"]` (comma-separated) keeps the resources of those sources only, and
`options["urls"]` (a JSON list or whitespace-separated) names the pages instead. Pages
travel `PAGES_PER_BATCH` envelopes to a raw page; one that fails is logged and skipped, the
others load. The loader (`activities/ingest.py`) attaches each file to the published
course/program whose `url` equals the file's key and quarantines a page no resource has.

Allowed hosts: the course/program sites below plus the hosts of every catalog source's
configured URLs (the catalogs' pages live beside their APIs: xPRO, MITx Online, MITPE, ...).

Differences on purpose (reference/mit-learn.md §9): requests have a timeout and a size cap and
fetch only from the allowed hosts; every page is re-read (see above) and rewritten only when its
markdown changed; a page that stops answering keeps its last file; no headless browser (React
pages that render client-side give little text — MIT Learn's WebDriver path is not rebuilt).

A program's page gets its published courses' pages appended, as MIT Learn does: the extractor
reads the program's courses from the catalog and puts their pages in the program's envelope
(`children`); the transform appends them under "Courses in this program", each under its title.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from bs4 import BeautifulSoup
from markdownify import markdownify

from learnflow.db.content_files import page_targets, program_course_urls
from learnflow.http import SourceHttpError
from learnflow.models import ContentFile, Quarantined, TransformOutput
from learnflow.schedules import ingest_schedule
from sources.base import ExtractContext, RawPage, Source

log = structlog.get_logger(__name__)

ETL_SOURCE = "marketing_pages"
FILE_TYPE = "marketing_page"
PAGES_PER_BATCH = 20
_DROP = ["script", "style", "noscript", "template", "svg", "iframe", "form", "nav", "footer"]
_HIDDEN = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


def page_markdown(html: str) -> tuple[str, str | None]:
    """HTML → (markdown of the body, page title). Images become their alt text."""
    soup = BeautifulSoup(html, "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else None
    body = soup.body or soup
    for tag in body.find_all(_DROP):
        tag.decompose()
    for tag in body.find_all(attrs={"hidden": True}):
        tag.decompose()
    for tag in body.find_all(attrs={"aria-hidden": "true"}):
        tag.decompose()
    for tag in body.find_all(style=_HIDDEN):
        tag.decompose()
    for img in body.find_all("img"):
        alt = img.get("alt")
        img.replace_with(alt.strip() if isinstance(alt, str) and alt.strip() else "")
    text = markdownify(str(body), heading_style="ATX", bullets="-")
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text, title or None


CHILDREN_HEADING = "## Courses in this program"


def _children_markdown(children: Any) -> str:
    """The courses' pages under one heading, each under its page title (MIT Learn appends a
    program's child courses' marketing content to the program's page)."""
    sections = []
    for child in children or []:
        if not isinstance(child, dict) or not isinstance(child.get("html"), str):
            continue
        content, title = page_markdown(child["html"])
        if content:
            sections.append(f"### {title or child.get('url') or ''}\n\n{content}")
    return f"{CHILDREN_HEADING}\n\n" + "\n\n".join(sections) if sections else ""


def transform_page(html: str | bytes, url: str, children: Any = None) -> ContentFile:
    """One page's HTML → the resource's marketing-page ContentFile (key = url = resource url);
    a program's `children` (envelopes of its courses' pages) are appended."""
    if isinstance(html, bytes | bytearray):
        html = bytes(html).decode("utf-8", "replace")
    if not isinstance(html, str):
        raise ValueError("a marketing page is HTML text")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"a marketing page needs the resource's http(s) URL, got {url!r}")
    content, title = page_markdown(html)
    if not content:
        raise ValueError(f"no text on the page at {url}")
    appended = _children_markdown(children)
    if appended:
        content = f"{content}\n\n{appended}"
    return ContentFile(
        key=url,
        url=url,
        title=title,
        content_title=title,
        file_type=FILE_TYPE,
        content_type="page",
        file_extension=".md",
        content=content,
        published=True,
    )


def canonical_url(html: str | bytes) -> str | None:
    """The page's own URL (`<link rel=canonical>`, else `og:url`), when it states one."""
    if isinstance(html, bytes | bytearray):
        html = bytes(html).decode("utf-8", "replace")
    soup = BeautifulSoup(html, "html.parser")
    for tag, attr in (
        (soup.find("link", rel="canonical"), "href"),
        (soup.find("meta", property="og:url"), "content"),
    ):
        value = tag.get(attr) if tag else None
        if isinstance(value, str) and urlsplit(value.strip()).scheme in ("http", "https"):
            return value.strip()
    return None


def _url_from(context: Sequence[Any]) -> str | None:
    for c in context:
        if isinstance(c, bytes | bytearray):
            c = bytes(c).decode("utf-8", "replace").strip()
        if isinstance(c, str) and c.strip().startswith(("http://", "https://")):
            return c.strip()
        if isinstance(c, dict) and isinstance(c.get("url"), str):
            return c["url"]
    return None


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: a page (envelope, or HTML + URL context) → one marketing-page ContentFile."""
    if kind != "pages":
        raise ValueError(f"unknown marketing pages kind {kind!r}")
    if isinstance(payload, dict):
        pages = [payload]
    elif isinstance(payload, list):
        pages = payload
    else:
        url = _url_from(context) or canonical_url(payload)
        if url is None:
            raise ValueError(
                "the page's URL must come as context (a string or {'url': ...})"
                " or from the page's <link rel=canonical>"
            )
        return TransformOutput(content_files=[transform_page(payload, url)])
    out = TransformOutput()
    for page in pages:
        try:
            if not isinstance(page, dict):
                raise ValueError("a page envelope is {'url': ..., 'html': ...}")
            out.content_files.append(
                transform_page(page.get("html"), page.get("url"), page.get("children"))
            )
        except (ValueError, TypeError) as exc:
            key = page.get("url") if isinstance(page, dict) else None
            out.quarantined.append(
                Quarantined(
                    source=ETL_SOURCE,
                    item_key=key if isinstance(key, str) else None,
                    reason=f"{type(exc).__name__}: {exc}",
                    raw=json.dumps(page, default=str)[:1_000_000],
                )
            )
    return out


def _listed_urls(value: Any) -> list[str]:
    """`options["urls"]`: a list, a JSON list, or whitespace-separated URLs."""
    if isinstance(value, str):
        value = json.loads(value) if value.lstrip().startswith("[") else value.split()
    return [u for u in value or [] if isinstance(u, str) and u]


async def _urls_to_fetch(ctx: ExtractContext) -> list[str]:
    if ctx.options.get("urls"):
        return _listed_urls(ctx.options["urls"])
    if ctx.pool is None:
        raise ValueError("marketing pages read their URLs from the catalog, and none is at hand")
    only_missing = str(ctx.options.get("only_missing", "")).lower() in ("1", "true", "yes")
    etl_sources = ctx.options.get("etl_source")
    if isinstance(etl_sources, str):
        etl_sources = [s.strip() for s in etl_sources.split(",") if s.strip()]
    allowed = ctx.http.allowed_hosts
    urls = []
    for target in await page_targets(ctx.pool, FILE_TYPE, etl_sources or None):
        if only_missing and target.has_page:
            continue
        host = (urlsplit(target.url).hostname or "").lower()
        if allowed is None or host in allowed:
            urls.append(target.url)
    return urls


async def _get_page(ctx: ExtractContext, url: str, seen: dict[str, str | None]) -> str | None:
    """A page's HTML, each URL fetched once per run (a course page is also a program's child)."""
    if url in seen:
        return seen[url]
    try:  # a host outside the allow-list is refused by the client: logged, skipped
        body = await ctx.http.get_bytes(url)
    except SourceHttpError as exc:
        log.warning("marketing_page.failed", url=url, error=str(exc))
        body = None
    else:
        if body is None:
            log.warning("marketing_page.missing", url=url)
    seen[url] = None if body is None else body.decode("utf-8", "replace")
    return seen[url]


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """GET each course/program page (see the module docstring for which), a program's courses'
    pages with it; envelopes travel `PAGES_PER_BATCH` to a raw page (a JSON list)."""
    urls = await _urls_to_fetch(ctx)
    log.info("marketing_pages.targets", pages=len(urls))
    children = await program_course_urls(ctx.pool, urls) if ctx.pool is not None else {}
    seen: dict[str, str | None] = {}
    batch: list[dict[str, Any]] = []
    for url in urls:
        html = await _get_page(ctx, url, seen)
        if html is None:
            continue
        envelope: dict[str, Any] = {"url": url, "html": html}
        if children.get(url):
            pages = [(c, await _get_page(ctx, c, seen)) for c in children[url]]
            envelope["children"] = [{"url": c, "html": h} for c, h in pages if h is not None]
        batch.append(envelope)
        if len(batch) >= PAGES_PER_BATCH:
            yield _raw_page(batch)
            batch = []
    if batch:
        yield _raw_page(batch)


def _raw_page(envelopes: list[dict[str, Any]]) -> RawPage:
    return RawPage(
        kind="pages",
        body=json.dumps(envelopes).encode(),
        item_count=len(envelopes),
        url=envelopes[0]["url"],
    )


def _catalog_site_urls(settings: Any) -> list[str]:
    """The configured URLs of every source that loads courses or programs."""
    from sources import all_sources

    urls: list[str] = []
    for source in all_sources().values():
        if source.name == ETL_SOURCE or source.urls is None:
            continue
        if {"course", "program"} & {str(t) for t in source.resource_types}:
            urls += [u for u in source.urls(settings) if u]
    return urls


SOURCE = Source(
    name="marketing_pages",
    etl_source=ETL_SOURCE,
    kinds=("pages",),
    transform=transform,
    extract=extract,
    hosts=(
        "mitxonline.mit.edu",
        "xpro.mit.edu",
        "learn.mit.edu",
        "professional.mit.edu",
        "executive.mit.edu",
        "www.edx.org",
        "micromasters.mit.edu",
        "ocw.mit.edu",
        "openlearninglibrary.mit.edu",
        "bootcamps.mit.edu",
    ),
    urls=_catalog_site_urls,
    description="Course/program marketing pages as markdown content files",
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (ingest_schedule("marketing_pages", "0 */12 * * *", timedelta(hours=12)),)
