"""`clean_html` caches nh3's output: the same strings as cleaning each time, and refusals as
before (a non-string is nh3's TypeError, not the cache's "unhashable type")."""

from __future__ import annotations

import nh3
import pytest

from sources.base import _ALLOWED_TAGS, _CACHED_CHARS, _LINK_ATTRIBUTES, _clean, clean_html


def _uncached(text: str, links: bool) -> str:
    if links:
        return nh3.clean(text, tags=_ALLOWED_TAGS | {"a"}, attributes=_LINK_ATTRIBUTES).strip()
    return nh3.clean(text, tags=_ALLOWED_TAGS, attributes={}).strip()


@pytest.mark.parametrize("links", [False, True])
def test_a_repeated_text_is_cleaned_as_the_first_time(links):
    html = (
        '<p class="x">Run <a href="https://x.org" target="_blank">notes</a></p><script>1</script>'
    )
    long = "<p>" + "word " * (_CACHED_CHARS // 5) + "</p><img src=x>"
    for text in (html, html, long, long, "  plain  "):
        assert clean_html(text, links=links) == _uncached(text, links)
    hits = _clean.cache_info().hits
    clean_html(html, links=links)
    assert _clean.cache_info().hits == hits + 1


@pytest.mark.parametrize("value", [{"a": 1}, ["x"], 7])
def test_what_nh3_refuses_is_refused_as_before(value):
    with pytest.raises(TypeError) as cached:
        clean_html(value)
    with pytest.raises(TypeError) as direct:
        _uncached(value, False)
    assert str(cached.value) == str(direct.value)
