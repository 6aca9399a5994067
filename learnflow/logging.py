"""Structured JSON logs (structlog) that carry Temporal workflow/activity ids and never secrets.

Both structlog calls and stdlib logging (temporalio's own `activity.logger`/`workflow.logger`,
uvicorn, asyncpg) go through the same processors and come out as one JSON object per line.
Redaction is by key name (password, token, secret, api_key, authorization, ...) and by value
(credentials inside URLs, `Bearer`/`JWT` headers, pydantic `SecretStr`), at any nesting depth.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import structlog
from pydantic import SecretBytes, SecretStr

REDACTED = "[redacted]"

_SECRET_KEYS = re.compile(
    r"(secret|passw|token|api_?key|authorization|credential|cookie|private_?key|signature)",
    re.IGNORECASE,
)
# user:password@ in URLs/DSNs (postgresql://u:pw@host/db, https://u:pw@host)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@")
_AUTH_VALUE = re.compile(r"\b(Bearer|JWT|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)


def redact_value(value: Any, depth: int = 0) -> Any:
    """`value` with secrets masked; containers are copied, never changed in place."""
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, str):
        value = _URL_CREDENTIALS.sub(r"\g<scheme>\g<user>:" + REDACTED + "@", value)
        return _AUTH_VALUE.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
    if depth > 6:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED
            if isinstance(k, str) and _SECRET_KEYS.search(k)
            else redact_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v, depth + 1) for v in value)
    return value


def redact(_logger: Any, _name: str, event: dict) -> dict:
    """structlog processor: mask secret-looking keys and secret-looking values."""
    return redact_value(event)


def _temporal_ids(_logger: Any, _name: str, event: dict) -> dict:
    """Add the workflow/activity the line was logged from (structlog calls and stdlib records)."""
    # temporalio's activity.logger / workflow.logger put their context in these `extra` keys.
    for extra in ("temporal_activity", "temporal_workflow"):
        ctx = event.pop(extra, None)
        if isinstance(ctx, Mapping):
            for key in ("workflow_id", "run_id", "workflow_type", "activity_id", "activity_type"):
                if ctx.get(key) is not None:
                    event.setdefault(key, ctx[key])
    try:
        from temporalio import activity

        info = activity.info()
        event.setdefault("workflow_id", info.workflow_id)
        event.setdefault("run_id", info.workflow_run_id)
        event.setdefault("activity_id", info.activity_id)
        event.setdefault("activity_type", info.activity_type)
        event.setdefault("attempt", info.attempt)
    except RuntimeError:
        pass
    return event


def _shared_processors() -> list:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _temporal_ids,
        redact,
    ]


def _formatter(json: bool) -> logging.Formatter:
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    return structlog.stdlib.ProcessorFormatter(
        # stdlib records: lift `extra=` fields (temporalio's context) into the event first.
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *_shared_processors()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


class _QuietStreamHandler(logging.StreamHandler):
    """A console handler that goes quiet when its stream breaks (a closed pipe after `| tee`
    was stopped) instead of printing a traceback per record to the same broken stream."""

    def handleError(self, record: logging.LogRecord) -> None:
        self.setLevel(logging.CRITICAL + 1)


def configure_logging(
    level: int | str = logging.INFO,
    json: bool = True,
    stream: TextIO | None = None,
    *,
    log_file: Path | None = None,
    console: bool = True,
) -> None:
    """One JSON object per line on `stream` (stderr) for structlog and stdlib loggers alike.

    With `log_file`, every line also goes to that file as JSON (`learn up`: DATA_DIR/logs/), and
    `console=False` keeps the console free of them (`learn up` without --verbose)."""
    if isinstance(level, str):
        level = logging.getLevelNamesMapping()[level.upper()]
    # The ids go into fields (_temporal_ids), so temporalio need not append them to messages.
    from temporalio import activity, workflow

    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    handlers: list[logging.Handler] = []
    if console:
        handler = _QuietStreamHandler(stream or sys.stderr)
        handler.setFormatter(_formatter(json))
        handlers.append(handler)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(_formatter(True))
        handlers.append(file_handler)
    if not handlers:  # else stdlib's last-resort handler prints warnings on stderr
        handlers.append(logging.NullHandler())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "learnflow"]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.set_name("learnflow")
        root.addHandler(handler)
    root.setLevel(level)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
