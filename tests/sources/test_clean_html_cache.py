"""`clean_html` caches nh3's output: the same strings as cleaning each time, and refusals as
before (a non-string is nh3's TypeError, not the cache's "unhashable type")."""

from __future__ import annotations

import html
import random

import nh3
import pytest

from sources.base import (
    _ALLOWED_TAGS,
    _CACHED_CHARS,
    _LINK_ATTRIBUTES,
    _clean,
    clean_html,
    strip_tags,
)


def _uncached(text: str, links: bool) -> str:
    if links:
        return nh3.clean(text, tags=_ALLOWED_TAGS | {"a"}, attributes=_LINK_ATTRIBUTES).strip()
    return nh3.clean(text, tags=_ALLOWED_TAGS, attributes={}).strip()


@pytest.mark.parametrize("links", [False, True])
def test_a_repeated_text_is_cleaned_as_the_first_time(links):
    markup = (
        '<p class="x">Run <a href="https://x.org" target="_blank">notes</a></p><script>1</script>'
    )
    long = "<p>" + "word " * (_CACHED_CHARS // 5) + "</p><img src=x>"
    for text in (markup, markup, long, long, "  plain  "):
        assert clean_html(text, links=links) == _uncached(text, links)
    hits = _clean.cache_info().hits
    clean_html(markup, links=links)
    assert _clean.cache_info().hits == hits + 1


@pytest.mark.parametrize("value", [{"a": 1}, ["x"], 7])
def test_what_nh3_refuses_is_refused_as_before(value):
    with pytest.raises(TypeError) as cached:
        clean_html(value)
    with pytest.raises(TypeError) as direct:
        _uncached(value, False)
    assert str(cached.value) == str(direct.value)


def test_the_built_cleaners_clean_as_nh3_clean_with_their_arguments():
    """`clean_html` and `strip_tags` use nh3 Cleaners built once: the output of nh3.clean called
    with the same tags and attributes, for markup, entities, links, comments, controls, and
    random mixes of them."""
    rng = random.Random(17)
    parts = [
        "<p>", "</p>", "<a href='https://x.org' title=t target=_blank>", "</a>", "<script>",
        "</script>", "<style>", "&amp;", "&nbsp;", "&lt;", "<br/>", "<img src=x>", "<!--", "-->",
        "<b class=c>", "</b>", "<h1>", "<table>", "<li>", "<ul>", "<", ">", "&", '"', "'", "=",
        " ", "\n", "\r", "\t", "\x00", "é", "😀", "text", "<a href='javascript:x'>", "<A HREF=y>",
    ]  # fmt: skip
    texts = [
        "",
        "  plain  ",
        *("".join(rng.choices(parts, k=rng.randint(1, 30))) for _ in range(3000)),
    ]
    for text in texts:
        assert _clean.__wrapped__(text, False) == _uncached(text, False), text
        assert _clean.__wrapped__(text, True) == _uncached(text, True), text
        assert strip_tags(text) == html.unescape(nh3.clean(text, tags=set())).strip(), text
