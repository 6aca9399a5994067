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

The extractor reads the URLs to scrape from `ctx.options["urls"]` (the workflow picks published
courses/programs lacking a published marketing page, as MIT Learn does); a page that fails is
logged and skipped, the others load.

Differences on purpose (reference/mit-learn.md §9): requests have a timeout and a size cap and
fetch only from the listed hosts (`SOURCE.hosts`); no headless browser (React pages that render client-side
give little text — MIT Learn's WebDriver path is not rebuilt); a program's page does not get its
courses' pages appended (that needs the catalog; left to the loader).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import structlog
from bs4 import BeautifulSoup
from markdownify import markdownify

from learnflow.http import SourceHttpError
from learnflow.models import ContentFile, Quarantined, TransformOutput
from sources.base import ExtractContext, RawPage, Source

log = structlog.get_logger(__name__)

ETL_SOURCE = "marketing_pages"
FILE_TYPE = "marketing_page"
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


def transform_page(html: str | bytes, url: str) -> ContentFile:
    """One page's HTML → the resource's marketing-page ContentFile (key = url = resource url)."""
    if isinstance(html, bytes | bytearray):
        html = bytes(html).decode("utf-8", "replace")
    if not isinstance(html, str):
        raise ValueError("a marketing page is HTML text")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"a marketing page needs the resource's http(s) URL, got {url!r}")
    content, title = page_markdown(html)
    if not content:
        raise ValueError(f"no text on the page at {url}")
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
        url = _url_from(context)
        if url is None:
            raise ValueError("the page's URL must come as context (a string or {'url': ...})")
        return TransformOutput(content_files=[transform_page(payload, url)])
    out = TransformOutput()
    for page in pages:
        try:
            if not isinstance(page, dict):
                raise ValueError("a page envelope is {'url': ..., 'html': ...}")
            out.content_files.append(transform_page(page.get("html"), page.get("url")))
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


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """GET each URL in `ctx.options["urls"]`; one envelope page per page that answered."""
    urls = [u for u in ctx.options.get("urls") or [] if isinstance(u, str)]
    for url in urls:
        try:  # a host outside SOURCE.hosts is refused by the client: logged, skipped
            body = await ctx.http.get_bytes(url)
        except SourceHttpError as exc:
            log.warning("marketing_page.failed", url=url, error=str(exc))
            continue
        if body is None:
            log.warning("marketing_page.missing", url=url)
            continue
        envelope = {"url": url, "html": body.decode("utf-8", "replace")}
        yield RawPage(kind="pages", body=json.dumps(envelope).encode(), item_count=1, url=url)


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
    description="Course/program marketing pages as markdown content files",
)
