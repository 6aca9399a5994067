"""`sources.base.parse_datetime`: the `fromisoformat` fast path gives what dateutil gave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from dateutil import parser as dateparser
from hypothesis import given
from hypothesis import strategies as st

from sources.base import EASTERN, parse_datetime


def _dateutil(text: str, assume_tz=None) -> datetime:
    dt = dateparser.parse(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=assume_tz or UTC)
    return dt.astimezone(UTC)


OFFSETS = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]
)
STYLES = st.sampled_from(["T", " "])


@given(
    dt=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)),
    tz=OFFSETS,
    sep=STYLES,
    spec=st.sampled_from(["auto", "seconds", "minutes", "milliseconds"]),
    zulu=st.booleans(),
)
def test_iso_strings_parse_as_dateutil_parses_them(dt, tz, sep, spec, zulu):
    text = dt.replace(tzinfo=tz).isoformat(sep=sep, timespec=spec)
    if zulu and tz is UTC:
        text = text.replace("+00:00", "Z")
    assert parse_datetime(text) == _dateutil(text)
    assert parse_datetime(text, assume_tz=EASTERN) == _dateutil(text, EASTERN)


@pytest.mark.parametrize(
    "text",
    [
        "2019-01-01",
        "  2019-01-01T00:00:00Z ",
        "March 5, 2024",
        "2024-03-05 10:00:00 -0500",
        "Tue, 05 Mar 2024 10:00:00 GMT",
        "20240305",
    ],
)
def test_other_shapes_still_go_through_dateutil(text):
    assert parse_datetime(text) == _dateutil(text.strip())


@pytest.mark.parametrize("text", ["2019-13-01", "2019-01-01T25:00:00Z", "not a date"])
def test_invalid_dates_raise_value_error(text):
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_empty_and_datetimes():
    assert parse_datetime(None) is None and parse_datetime("") is None
    naive = datetime(2024, 1, 2, 3, 4)
    assert parse_datetime(naive) == naive.replace(tzinfo=UTC)


def test_a_repeated_iso_text_is_parsed_once_per_zone():
    from sources.base import _iso_utc

    text = "2031-07-04T09:30:00"  # naive: the zone it is read in is part of the answer
    first = parse_datetime(text)
    hits = _iso_utc.cache_info().hits
    assert parse_datetime(f" {text} ") == first == datetime(2031, 7, 4, 9, 30, tzinfo=UTC)
    assert _iso_utc.cache_info().hits == hits + 1
    eastern = parse_datetime(text, assume_tz=EASTERN)
    assert eastern == _dateutil(text, EASTERN) != first


def test_dateutil_shapes_are_not_cached():
    """dateutil fills what a text lacks from today's date: its answers are not kept."""
    from sources.base import _iso_utc

    before = _iso_utc.cache_info()
    assert parse_datetime("March 5") == _dateutil("March 5")
    after = _iso_utc.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)
