"""The fidelity suite: each source's transform on its recorded payload, checked field by field
against expectations written from reading MIT Learn's ETL (../shared/reference/mit-learn-etl),
not from running learnflow. Date-dependent rules run on a frozen clock (`frozen_clock`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.fidelity)


def frozen(monkeypatch: pytest.MonkeyPatch, module, when: datetime) -> datetime:
    """Pin a source module's `clock` (the "now" its transform reads)."""
    monkeypatch.setattr(module, "clock", lambda: when)
    return when


# A "now" after every recorded run has ended and before none has started is not possible for
# every source; each test says which one it uses.
LATE_2026 = datetime(2026, 12, 1, tzinfo=UTC)
