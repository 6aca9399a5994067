"""JSON through orjson where it gives exactly what the stdlib gives, the stdlib where it might not.

Two uses on the ingest path, both about CPU per resource (#17): parsing a page (`loads`) and the
content hash's canonical text (`canonical`). Neither may change a value or a byte: a different
parse would change a transform's output, a different canonical text every content hash (and the
next run would rewrite every row). orjson differs from `json` in a few known places, each
detected here and handed to `json`:

* parsing: integers beyond 64 bits (orjson gives a float), NaN/Infinity literals, numbers that
  overflow to infinity, lone surrogate escapes, non-UTF-8 input (orjson refuses the last four);
* writing: `json.dumps` escapes every non-ASCII character and DEL (`ensure_ascii`) and writes a
  float below 1e-4 as repr does (`1e-05`; orjson `0.00001` or `1e-5`: measured on 10^6 random
  floats, every other finite float is written alike), NaN/Infinity as literals (orjson: null;
  `canonical`'s callers pass finite floats only); orjson refuses integers beyond 64 bits and
  non-string keys.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import orjson

# Digits as b"0", everything else as b" ": a run of 19 zeros is an integer that may be beyond
# the 64 bits orjson parses exactly (it makes them floats). A C translate + memmem, ~0.3 of a
# page's orjson parse; a regex scan cost more than the stdlib parse.
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19


def loads(raw: bytes | str) -> Any:
    """`json.loads(raw)`, the same values, mostly by orjson (a 1.8 MB catalog page: 11.5 ms
    with the digit check, against 15.6)."""
    try:
        data = raw.encode() if isinstance(raw, str) else raw
    except UnicodeEncodeError:  # a lone surrogate in a str
        return json.loads(raw)
    if _LONG_RUN not in data.translate(_DIGITS):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # json.loads decides: it may read it (NaN, a lone surrogate) or raise its error
    return json.loads(raw)


def dumps(data: Any, *, sort_keys: bool = False, finite: bool = True) -> bytes:
    """`json.dumps(data, sort_keys=sort_keys, separators=(",", ":")).encode()`, byte for byte,
    mostly by orjson. `data` holds JSON values (dicts with str keys, lists, str, int, float,
    bool, None), e.g. a model_dump(mode="json"); `finite=False` when a float in it may be NaN or
    infinite (orjson writes those as null: only the stdlib writes them)."""
    blob = None
    if finite:
        option = orjson.OPT_SORT_KEYS if sort_keys else 0
        with contextlib.suppress(orjson.JSONEncodeError, TypeError):
            blob = orjson.dumps(data, option=option)
    if blob is not None and blob.isascii() and b"\x7f" not in blob and not _small_float(blob):
        return blob
    return json.dumps(data, sort_keys=sort_keys, separators=(",", ":")).encode()


def canonical(data: Any, *, finite: bool = True) -> bytes:
    """`dumps` with sorted keys: the text a content hash is taken of."""
    return dumps(data, sort_keys=True, finite=finite)


def _small_float(blob: bytes) -> bool:
    """Whether orjson may have written a float below 1e-4 (`0.0000…` or `…e-…` after a digit);
    text that merely contains either only sends its value the slow, always right, way."""
    if b"0.0000" in blob:
        return True
    at = blob.find(b"e-")
    while at != -1:
        if at and 0x30 <= blob[at - 1] <= 0x39:
            return True
        at = blob.find(b"e-", at + 2)
    return False
