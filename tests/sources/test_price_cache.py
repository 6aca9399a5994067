"""`make_price` makes one Price per amount text and currency and shares it: the same values as
making each, and the same refusals with the same messages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from learnflow.models import Price
from sources._catalog import _price_of, make_price


def test_a_repeated_price_is_made_once():
    first = make_price("0.00", "USD")
    hits = _price_of.cache_info().hits
    assert make_price("0.00", "USD") is first
    assert _price_of.cache_info().hits == hits + 1
    assert first == Price(amount=Decimal("0.00"), currency="USD")


@pytest.mark.parametrize(
    ("amount", "currency", "dumped"),
    [
        (-0.0, "USD", {"amount": "-0.00", "currency": "USD"}),  # not 0.0's price
        (0.0, "USD", {"amount": "0.00", "currency": "USD"}),
        ("12.345", " eur ", {"amount": "12.34", "currency": "EUR"}),
        (7, None, {"amount": "7.00", "currency": "USD"}),
        ("7", "dollars", {"amount": "7.00", "currency": "USD"}),
    ],
)
def test_prices_keep_what_their_text_says(amount, currency, dumped):
    assert make_price(amount, currency).model_dump(mode="json") == dumped
    assert make_price(amount, currency).model_dump(mode="json") == dumped


def test_refusals_keep_their_messages():
    with pytest.raises(ValueError, match=r"^price None is not a number$"):
        make_price(None)
    with pytest.raises(ValueError, match=r"^price -1 is not a usable amount$"):
        make_price(-1)
    with pytest.raises(AttributeError):  # a currency that is no str: as before, not "unhashable"
        make_price("1", {"code": "USD"})
