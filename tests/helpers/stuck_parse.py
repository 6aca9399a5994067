"""A parse that holds the GIL and never ends, for the embedded extractor's timeout tests.

The extractor's `parse` hook runs in its child process and must pickle by name, hence a module.
A catastrophic-backtracking regex stands in for a stuck native Tika parse: `re` runs in C and
never releases the GIL (2**48 steps), exactly what a thread-based timeout cannot interrupt."""

from __future__ import annotations

import os
import re
from pathlib import Path

from learnflow.textextract import parse_path

MARKER = b"STUCK-PARSE"
# Where the stuck parse writes its pid (set before the extractor spawns its children).
PID_DIR_ENV = "LEARNFLOW_TEST_STUCK_PARSE_PID_DIR"


def stuck_on_marker(path: str, use_ocr: bool, max_chars: int, ocr_language: str):
    """Parse as usual, except a file containing MARKER: write this process's pid into
    $PID_DIR_ENV (so the test can check it was killed), then hold the GIL forever."""
    if MARKER in Path(path).read_bytes():
        Path(os.environ[PID_DIR_ENV], f"{os.getpid()}.pid").write_text(str(os.getpid()))
        re.fullmatch(r"(a+)+b", "a" * 48)
    return parse_path(path, use_ocr, max_chars, ocr_language)
