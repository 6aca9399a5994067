"""ProgramCertificate: rows written by the reverse-ETL role (Hightouch in MIT Learn) into
`external.programcertificate`; this service only reads them, as the app role."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import asyncpg
from pydantic import BaseModel

from learnflow.db.roles import (
    APP_ROLE,
    REVERSE_ETL_ROLE,
    RoleNotProvisionedError,
    set_local_role,
)

__all__ = [
    "APP_ROLE",
    "REVERSE_ETL_ROLE",
    "ProgramCertificate",
    "PublicProgramCertificate",
    "RoleNotProvisionedError",
    "list_program_certificates",
    "write_program_certificates",
]

SCHEMA = "external"
TABLE = f"{SCHEMA}.programcertificate"
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

COLUMNS = (
    "record_hash",
    "program_title",
    "user_full_name",
    "user_email",
    "user_edxorg_id",
    "micromasters_program_id",
    "mitxonline_program_id",
    "user_edxorg_username",
    "user_mitxonline_username",
    "user_first_name",
    "user_last_name",
    "user_gender",
    "user_year_of_birth",
    "user_country",
    "user_address_city",
    "user_address_postal_code",
    "user_street_address",
    "user_address_state_or_territory",
    "program_completion_timestamp",
)


class ProgramCertificate(BaseModel):
    record_hash: str
    program_title: str
    user_full_name: str = ""
    user_email: str
    user_edxorg_id: int | None = None
    micromasters_program_id: int | None = None
    mitxonline_program_id: int | None = None
    user_edxorg_username: str | None = None
    user_mitxonline_username: str | None = None
    user_first_name: str | None = None
    user_last_name: str | None = None
    user_gender: str | None = None
    user_year_of_birth: str | None = None
    user_country: str | None = None
    user_address_city: str | None = None
    user_address_postal_code: str | None = None
    user_street_address: str | None = None
    user_address_state_or_territory: str | None = None
    program_completion_timestamp: datetime | None = None


class PublicProgramCertificate(BaseModel):
    """What the HTTP endpoint returns: the certificate, not the learner's address or gender."""

    record_hash: str
    program_title: str
    user_full_name: str
    micromasters_program_id: int | None = None
    mitxonline_program_id: int | None = None
    program_completion_timestamp: datetime | None = None


_SELECT = (
    f"SELECT {', '.join(COLUMNS)} FROM {TABLE} "  # noqa: S608 - constant identifiers only
    "WHERE lower(user_email) = lower($1) "
    "ORDER BY program_completion_timestamp DESC NULLS LAST, program_title, record_hash"
)


async def list_program_certificates(
    conn: asyncpg.Connection, user_email: str, role: str | None = APP_ROLE
) -> list[ProgramCertificate]:
    """A learner's certificates (email matched case-insensitively), read as `role` inside a
    read-only transaction (`SET LOCAL ROLE`), so the connection's own rights are not used.
    Pass a connection that is not already inside a transaction. A missing role raises
    RoleNotProvisionedError, which names the fix."""
    if role and not _ROLE.fullmatch(role):
        raise ValueError(f"not a role name: {role!r}")
    async with conn.transaction(readonly=True):
        if role:
            await set_local_role(conn, role)
        rows = await conn.fetch(_SELECT, user_email)
    return [ProgramCertificate(**dict(r)) for r in rows]


_UPSERT = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) "  # noqa: S608 - constant identifiers only
    f"VALUES ({', '.join(f'${i + 1}' for i in range(len(COLUMNS)))}) "
    "ON CONFLICT (record_hash) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "record_hash")
)


async def write_program_certificates(
    conn: asyncpg.Connection, certs: Sequence[ProgramCertificate]
) -> None:
    """Upsert on the sync hash as the reverse-ETL role, as the reverse-ETL sync does (a local
    load, a backfill). A missing role raises RoleNotProvisionedError, which names the fix."""
    async with conn.transaction():
        await set_local_role(conn, REVERSE_ETL_ROLE)
        await conn.executemany(_UPSERT, [[getattr(c, col) for col in COLUMNS] for c in certs])
