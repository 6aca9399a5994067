"""Where the recorded payloads the tests serve are: `../shared/fixtures` beside the checkout, or
where `REFERENCE_DATA_DIR` (their `mitlearn` directory) says. Every test reads them through these
names, so a checkout elsewhere points all of them at the fixtures with that one variable."""

from __future__ import annotations

from learnflow.settings import get_settings

MITLEARN = get_settings().reference_data_dir  # <fixtures>/mitlearn
FIXTURES_ROOT = MITLEARN.parent  # <shared>/fixtures
SHARED = FIXTURES_ROOT.parent
TEST_JSON = MITLEARN / "test_json"


def missing_fixtures() -> str | None:
    """Why the tests cannot run here (no recorded payloads where they are looked for), or None."""
    if TEST_JSON.is_dir():
        return None
    return (
        f"the recorded fixtures are not at {MITLEARN}: clone learnflow beside the shared/ "
        "directory (../shared/fixtures), or set REFERENCE_DATA_DIR to its fixtures/mitlearn"
    )
