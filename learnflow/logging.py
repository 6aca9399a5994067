"""Structured JSON logs (structlog) that carry Temporal workflow/activity ids and never secrets."""

from __future__ import annotations

import logging
import re
import sys

import structlog

_SECRET_KEYS = re.compile(r"(secret|password|token|api_key|authorization)", re.IGNORECASE)


def _temporal_ids(_logger, _name, event: dict) -> dict:
    try:
        from temporalio import activity

        info = activity.info()
        event.setdefault("workflow_id", info.workflow_id)
        event.setdefault("activity_id", info.activity_id)
        event.setdefault("activity", info.activity_type)
    except RuntimeError:
        pass
    return event


def _redact(_logger, _name, event: dict) -> dict:
    for key in list(event):
        if _SECRET_KEYS.search(key):
            event[key] = "[redacted]"
    return event


def configure_logging(level: int = logging.INFO, json: bool = True) -> None:
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _temporal_ids,
            _redact,
            structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
