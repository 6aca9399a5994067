"""Marketing pages. No page is recorded: `built_marketing_page()` builds one shaped like a
course product page (title, navigation, hero image, sections, scripts, hidden and footer parts),
as MIT Learn's own tests mock it inline."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.harness.fixture_server import FixtureServer, Response
from learnflow.http import SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import marketing_pages
from sources.base import ExtractContext
from tests.helpers.corruption import JUNK

URL = "https://xpro.mit.edu/courses/course-v1:xPRO+AI+R1/"


def built_marketing_page(title: str = "Designing AI Products") -> str:
    return f"""<!doctype html>
<html lang="en"><head><title>{title} | MIT xPRO</title>
<style>.hero{{color:red}}</style><script>window.dataLayer=[]</script></head>
<body>
<nav><a href="/">Home</a><a href="/catalog">Catalog</a></nav>
<header><h1>{title}</h1><img src="/hero.jpg" alt="Students at a whiteboard"></header>
<main>
  <section><h2>About this course</h2>
  <p>Learn how to <strong>design</strong> products with <a href="https://mit.edu">MIT</a> faculty.</p>
  </section>
  <section><h2>What you will learn</h2><ul><li>Framing problems</li><li>Prototyping</li></ul></section>
  <div style="display: none">tracking pixel text</div>
  <div hidden>modal: sign up now</div>
  <img src="/decor.png">
  <noscript>enable javascript</noscript>
</main>
<footer>© MIT 2024</footer>
<script>alert("x")</script>
</body></html>"""


def test_page_becomes_a_markdown_content_file():
    out = marketing_pages.transform("pages", built_marketing_page().encode(), [URL])
    assert out.resources == [] and not out.quarantined
    (page,) = out.content_files
    assert (page.key, page.url) == (URL, URL)
    assert page.file_type == "marketing_page" and page.file_extension == ".md"
    assert page.title == page.content_title == "Designing AI Products | MIT xPRO"
    assert page.content == (
        "# Designing AI Products\n\nStudents at a whiteboard\n\n## About this course\n\n"
        "Learn how to **design** products with [MIT](https://mit.edu) faculty.\n\n"
        "## What you will learn\n\n- Framing problems\n- Prototyping"
    )
    for gone in (
        "alert",
        "dataLayer",
        "Catalog",
        "tracking pixel",
        "sign up now",
        "©",
        "javascript",
    ):
        assert gone not in page.content
    assert page.run_id is None and page.published


def test_envelopes_and_the_pure_function():
    envelope = {"url": URL, "html": built_marketing_page("Other")}
    (page,) = marketing_pages.transform("pages", envelope).content_files
    assert page.content.startswith("# Other")
    direct = marketing_pages.transform_page(built_marketing_page(), URL)
    assert direct.key == URL and direct.checksum == direct.model_copy().checksum
    url_dict = marketing_pages.transform("pages", b"<p>x</p>", [{"url": URL}])
    assert url_dict.content_files[0].content == "x"


def test_bad_page_is_quarantined_the_rest_load():
    pages = [
        {"url": URL, "html": built_marketing_page()},
        {"url": "ftp://x/y", "html": "<p>x</p>"},
        {"url": "https://xpro.mit.edu/empty", "html": "<script>only()</script>"},
        {"html": "<p>no url</p>"},
        "not an envelope",
    ]
    out = marketing_pages.transform("pages", pages)
    assert [c.key for c in out.content_files] == [URL]
    assert len(out.quarantined) == 4
    assert out.quarantined[1].item_key == "https://xpro.mit.edu/empty"
    assert "no text" in out.quarantined[1].reason


def test_wrong_shape_raises_value_error():
    with pytest.raises(ValueError, match="URL"):
        marketing_pages.transform("pages", b"<p>x</p>")  # no url anywhere
    with pytest.raises(ValueError):
        marketing_pages.transform("pages", 42, [URL])
    with pytest.raises(ValueError):
        marketing_pages.transform("courses", b"<p>x</p>", [URL])


# Any wrong-typed value (tests.helpers.corruption), and bytes.
ENVELOPE_JUNK = st.one_of(JUNK, st.binary(max_size=20))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    url=st.one_of(ENVELOPE_JUNK, st.just(URL)),
    html=st.one_of(ENVELOPE_JUNK, st.just(built_marketing_page())),
    drop=st.sampled_from(["url", "html", None]),
)
def test_corrupted_envelopes_only_quarantine(url, html, drop):
    envelope = {"url": url, "html": html}
    if drop:
        envelope.pop(drop)
    out = marketing_pages.transform("pages", [envelope, {"url": URL, "html": "<p>ok</p>"}])
    assert isinstance(out, TransformOutput)
    assert URL in {c.key for c in out.content_files}
    assert len(out.content_files) + len(out.quarantined) == 2


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(built_marketing_page())))
def test_truncated_html_never_raises_anything_but_value_error(cut):
    try:
        out = marketing_pages.transform("pages", built_marketing_page()[:cut].encode(), [URL])
    except ValueError:
        return
    assert isinstance(out, TransformOutput)


async def test_extract_fetches_each_url_and_skips_failures():
    with FixtureServer() as server:
        base = server.base_url
        server.route("/courses/a", Response(200, built_marketing_page("A").encode()))
        server.route("/courses/b", Response(200, built_marketing_page("B").encode()))
        server.inject("/courses/b", Response(502))
        server.route("/courses/gone", Response(410))
        urls = [
            f"{base}/courses/a",
            f"{base}/courses/gone",
            f"{base}/courses/b",
            "https://evil.example.com/x",
        ]
        async with SourceHttp(
            allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01
        ) as http:
            ctx = ExtractContext(http=http, settings=get_settings(), options={"urls": urls})
            pages = [p async for p in marketing_pages.extract(ctx)]
        assert server.hits("/courses/b") == 2  # 502, then the page
    # Pages travel PAGES_PER_BATCH envelopes to a raw page: the two that answered share one.
    (page,) = pages
    assert page.kind == "pages" and page.item_count == 2
    envelopes = json.loads(page.body)
    assert [e["url"] for e in envelopes] == [f"{base}/courses/a", f"{base}/courses/b"]
    out = marketing_pages.transform("pages", envelopes)
    assert [c.content[:3] for c in out.content_files] == ["# A", "# B"]


async def test_extract_batches_pages_and_reads_urls_from_options_text(monkeypatch):
    monkeypatch.setattr(marketing_pages, "PAGES_PER_BATCH", 2)
    with FixtureServer() as server:
        base = server.base_url
        for n in range(5):
            server.route(f"/p/{n}", Response(200, built_marketing_page(f"P{n}").encode()))
        listed = " ".join(f"{base}/p/{n}" for n in range(5))  # FetchInput.options are strings
        async with SourceHttp(allowed_hosts={"127.0.0.1"}, allow_private=True) as http:
            ctx = ExtractContext(http=http, settings=get_settings(), options={"urls": listed})
            pages = [p async for p in marketing_pages.extract(ctx)]
    assert [p.item_count for p in pages] == [2, 2, 1]
    as_json = json.dumps([f"{base}/p/0"])
    assert marketing_pages._listed_urls(as_json) == [f"{base}/p/0"]


async def test_extract_without_urls_needs_the_catalog():
    async with SourceHttp(allowed_hosts={"127.0.0.1"}) as http:
        ctx = ExtractContext(http=http, settings=get_settings())
        with pytest.raises(ValueError, match="catalog"):
            [p async for p in marketing_pages.extract(ctx)]


def test_page_url_from_its_canonical_link_when_no_context():
    html = built_marketing_page().replace(
        "<title>", f'<link rel="canonical" href="{URL}"><title>', 1
    )
    (page,) = marketing_pages.transform("pages", html.encode()).content_files
    assert page.key == URL
    og = built_marketing_page().replace(
        "<title>", f'<meta property="og:url" content="{URL}"><title>', 1
    )
    assert marketing_pages.canonical_url(og) == URL
    # Context wins over the page's own claim.
    other = "https://xpro.mit.edu/other/"
    assert marketing_pages.transform("pages", html.encode(), [other]).content_files[0].key == other


def test_allowed_hosts_include_the_catalog_sources_sites():
    hosts = marketing_pages.SOURCE.allowed_hosts(get_settings())
    assert {"xpro.mit.edu", "learn.mit.edu", "mitxonline.mit.edu"} <= hosts
    assert "professional.mit.edu" in hosts


def test_a_program_page_gets_its_courses_pages_appended():
    from sources.marketing_pages import CHILDREN_HEADING

    envelope = {
        "url": "https://xpro.mit.edu/programs/p1/",
        "html": built_marketing_page("The Program"),
        "children": [
            {"url": "https://xpro.mit.edu/courses/c1/", "html": built_marketing_page("Course One")},
            {"url": "https://xpro.mit.edu/courses/c2/", "html": built_marketing_page("Course Two")},
        ],
    }
    (page,) = marketing_pages.transform("pages", [envelope]).content_files
    own, appended = page.content.split(CHILDREN_HEADING, 1)
    assert "The Program" in own and "Course One" not in own
    # each course under its page title, in program order
    assert appended.index("### ") < appended.index("Course One") < appended.index("Course Two")
    assert page.key == envelope["url"]
