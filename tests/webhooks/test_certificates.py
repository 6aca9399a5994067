"""ProgramCertificate: written as the reverse-ETL role, read back as the app role (function and
HTTP endpoint); the app role cannot write."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from webhook_service.certificates import (
    APP_ROLE,
    REVERSE_ETL_ROLE,
    ProgramCertificate,
    list_program_certificates,
)

from .conftest import CERT_TOKEN, MIGRATION, Running

pytestmark = [pytest.mark.webhooks, pytest.mark.postgres]

PATH = "/api/v1/program_certificates/"


def cert_row(email: str, title: str, ts: datetime | None) -> dict:
    return {
        "record_hash": uuid.uuid4().hex,
        "program_title": title,
        "user_full_name": "Ada Lovelace",
        "user_email": email,
        "user_edxorg_id": 42,
        "micromasters_program_id": 3,
        "mitxonline_program_id": None,
        "user_edxorg_username": "ada",
        "user_mitxonline_username": "ada_mitx",
        "user_first_name": "Ada",
        "user_last_name": "Lovelace",
        "user_gender": "f",
        "user_year_of_birth": "1815",
        "user_country": "GB",
        "user_address_city": "London",
        "user_address_postal_code": "W1",
        "user_street_address": "12 St James's Square",
        "user_address_state_or_territory": None,
        "program_completion_timestamp": ts,
    }


@pytest.fixture
async def conn(migrated: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(migrated)
    try:
        yield c
    finally:
        await c.close()


async def write_as_reverse_etl(conn: asyncpg.Connection, rows: list[dict]) -> None:
    cols = list(rows[0])
    sql = (
        f"INSERT INTO external.programcertificate ({', '.join(cols)}) "
        f"VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))}) "
        "ON CONFLICT (record_hash) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != "record_hash")
    )
    async with conn.transaction():
        await conn.execute(f"SET LOCAL ROLE {REVERSE_ETL_ROLE}")
        await conn.executemany(sql, [[r[c] for c in cols] for r in rows])


async def test_reverse_etl_writes_app_reads(conn: asyncpg.Connection):
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    older = cert_row(email, "Statistics and Data Science", datetime(2024, 5, 1, tzinfo=UTC))
    newer = cert_row(email, "Supply Chain Management", datetime(2025, 1, 2, tzinfo=UTC))
    other = cert_row("someone@example.com", "DEDP", None)
    await write_as_reverse_etl(conn, [older, newer, other])
    # Upsert on the sync hash (what the reverse-ETL does on every run) and delete work too.
    newer["program_title"] = "Supply Chain Management (MicroMasters)"
    await write_as_reverse_etl(conn, [newer])

    certs = await list_program_certificates(conn, email.upper())
    assert [c.record_hash for c in certs] == [newer["record_hash"], older["record_hash"]]
    assert certs[0] == ProgramCertificate(**newer)

    async with conn.transaction():
        await conn.execute(f"SET LOCAL ROLE {REVERSE_ETL_ROLE}")
        await conn.execute(
            "DELETE FROM external.programcertificate WHERE record_hash = $1", older["record_hash"]
        )
    assert len(await list_program_certificates(conn, email)) == 1
    # The role was local to each transaction: the session is back to its own user.
    assert await conn.fetchval("SELECT current_user") == "postgres"


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO external.programcertificate (record_hash, program_title, user_email) "
        "VALUES ('x', 't', 'e@example.com')",
        "UPDATE external.programcertificate SET program_title = 'forged'",
        "DELETE FROM external.programcertificate",
        "TRUNCATE external.programcertificate",
    ],
)
async def test_app_role_cannot_write(conn: asyncpg.Connection, statement: str):
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with conn.transaction():
            await conn.execute(f"SET LOCAL ROLE {APP_ROLE}")
            await conn.execute(statement)


async def test_migration_is_idempotent(conn: asyncpg.Connection):
    async with conn.transaction():
        await conn.execute(MIGRATION.read_text())
    roles = await conn.fetch(
        "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY($1::text[])",
        [APP_ROLE, REVERSE_ETL_ROLE],
    )
    assert {r["rolname"]: r["rolcanlogin"] for r in roles} == {
        APP_ROLE: False,
        REVERSE_ETL_ROLE: False,
    }


async def test_http_endpoint_reads_as_app(cert_service: Running, conn: asyncpg.Connection):
    email = f"grace-{uuid.uuid4().hex[:8]}@example.com"
    row = cert_row(email, "Data, Economics, and Design of Policy", datetime(2025, 6, 1, tzinfo=UTC))
    await write_as_reverse_etl(conn, [row])
    auth = {"authorization": f"Bearer {CERT_TOKEN}"}
    async with httpx.AsyncClient(base_url=cert_service.url, timeout=30) as http:
        r = await http.get(PATH, params={"email": email}, headers=auth)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == 1
        result = body["results"][0]
        assert result["record_hash"] == row["record_hash"]
        assert result["program_title"] == row["program_title"]
        # The public view leaves out address, gender and year of birth.
        assert "user_street_address" not in result and "user_gender" not in result

        assert (await http.get(PATH, params={"email": email})).status_code == 401
        wrong = {"authorization": "Bearer nope"}
        assert (await http.get(PATH, params={"email": email}, headers=wrong)).status_code == 403
        assert (await http.get(PATH, params={"email": "x"}, headers=auth)).status_code == 400
        assert (await http.get(PATH, headers=auth)).status_code == 400
        empty = await http.get(PATH, params={"email": "nobody@example.com"}, headers=auth)
        assert empty.json() == {"count": 0, "results": []}


async def test_http_endpoint_without_database_is_503(service: Running):
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
        r = await http.get(
            PATH,
            params={"email": "a@example.com"},
            headers={"authorization": f"Bearer {CERT_TOKEN}"},
        )
    assert r.status_code == 503
