"""`learnflow.fastjson`: orjson where it gives the stdlib's values and bytes exactly. A page parsed
differently changes a transform's output; a canonical text that differs by one byte changes every
content hash, and the next run rewrites every row."""

from __future__ import annotations

import json
import math
import random
import struct
import types
import typing

import pytest
from pydantic import BaseModel

from learnflow.fastjson import canonical, loads
from learnflow.models import Resource
from tests.conftest import FIXTURES

RECORDED = sorted(FIXTURES.parent.rglob("*.json"))


def _stdlib(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _same_values(a, b) -> bool:
    return repr(a) == repr(b)  # repr: 1 vs 1.0, -0.0 vs 0.0 and NaN compare as different/equal


def test_every_recorded_payload_parses_and_serialises_as_the_stdlib_does():
    assert len(RECORDED) > 20
    non_ascii = 0
    for path in RECORDED:
        raw = path.read_bytes()
        data = json.loads(raw)
        assert _same_values(loads(raw), data), path
        assert canonical(data) == _stdlib(data), path
        non_ascii += not raw.isascii()
    assert non_ascii  # the recordings carry non-ASCII text (json.dumps escapes it)


EDGES = [
    {"small": 1e-05, "smaller": 7.98e-08, "tiny": 5e-324, "neg": -2.5e-05, "edge": 0.0001},
    {"big": 1e16, "bigger": 1.5e300, "ints": [2**63 - 1, -(2**63), 10**18]},
    {"beyond64": 2**64, "neg_beyond": -(2**63) - 1},
    {"floats": [0.0, -0.0, 1.0, 100.0, 0.1, 1 / 3, 123456789.125]},
    {"text": "café – “quoted” \u2028 😀", "del": "a\x7fb", "ctl": '\x00\x1f\n\t\b\f\r"\\/'},
    {"b": 1, "a": {"z": [], "y": {}}, "A": None, "é": True, "": False},
    {"looks_like_numbers": "1e-5 0.00001 x:1e-5,", "uuid": "3e-4a5e-9"},
    [1, "two", 3.5, None],
]


@pytest.mark.parametrize("data", EDGES, ids=range(len(EDGES)))
def test_edges_match_the_stdlib(data):
    assert canonical(data) == _stdlib(data)
    text = json.dumps(data).encode()
    assert _same_values(loads(text), json.loads(text))


@pytest.mark.parametrize(
    "raw",
    [
        b"18446744073709551616",  # orjson alone would give a float
        b'{"n": -9223372036854775809}',
        b"[NaN, Infinity, -Infinity]",
        b"1e400",
        b'"\\ud800"',
        b'{"a": 1, "a": 2}',
        "\ufeff{}".encode(),
        '"\udc80"',
    ],
)
def test_what_orjson_reads_otherwise_goes_to_the_stdlib(raw):
    try:
        expected = json.loads(raw)
    except ValueError as exc:
        with pytest.raises(type(exc)):
            loads(raw)
    else:
        assert _same_values(loads(raw), expected)


def test_random_values_match_the_stdlib():
    rng = random.Random(17)

    def number():
        kind = rng.randrange(4)
        if kind == 0:
            value = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
            return value if math.isfinite(value) else 0.5
        if kind == 1:
            return rng.random() * 10 ** rng.randint(-30, 30)
        if kind == 2:
            return rng.randint(-(2**70), 2**70)
        return round(rng.random() * 10 ** rng.randint(0, 17), rng.randint(0, 6))

    def value(depth=0):
        kind = rng.randrange(6 if depth < 3 else 3)
        if kind == 0:
            return number()
        if kind == 1:
            return "".join(
                chr(rng.choice((rng.randint(0, 0x7F), rng.randint(0x80, 0x3000)))) for _ in range(5)
            )
        if kind == 2:
            return rng.choice((True, False, None, "plain"))
        if kind in (3, 4):
            return {
                "".join(rng.choice("abZ_é") for _ in range(3)): value(depth + 1) for _ in range(3)
            }
        return [value(depth + 1) for _ in range(3)]

    for _ in range(20_000):
        data = value()
        assert canonical(data) == _stdlib(data)
        text = json.dumps(data).encode()
        assert _same_values(loads(text), json.loads(text))


def _float_fields(model: type[BaseModel], path: str = "") -> list[str]:
    found = []
    for name, field in model.model_fields.items():
        stack = [field.annotation]
        while stack:
            tp = stack.pop()
            if tp is float:
                found.append(path + name)
            elif isinstance(tp, type) and issubclass(tp, BaseModel):
                found += _float_fields(tp, f"{path}{name}.")
            elif isinstance(tp, types.UnionType) or typing.get_origin(tp) is not None:
                stack += [a for a in typing.get_args(tp) if a is not type(None)]
    return found


def test_the_resource_s_only_float_is_the_one_stored_form_checks_for_nan():
    """`Resource.stored_form` checks `completeness` for NaN (json.dumps writes NaN, orjson null);
    a new float field anywhere in the model needs the same check."""
    assert _float_fields(Resource) == ["completeness"]
    res = Resource(readable_id="x", platform="p", resource_type="course", etl_source="e", title="t")
    for value in (float("nan"), 1e-05, 0.5):
        nan = res.model_copy(update={"completeness": value})
        data, blob, _ = nan.stored_form()
        assert blob.encode() == _stdlib(data)
