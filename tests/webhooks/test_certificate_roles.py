"""Migrating as a database owner without CREATEROLE (managed PostgreSQL): the migrations succeed
without the certificate roles, the certificate write and read fail with an error that names the
fix, and after `learn db provision-roles` (an admin with CREATEROLE) and `learn migrate`'s grants
both work. A cluster of its own: the roles are cluster-wide and the shared clusters have them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from devstack.harness.postgres import DebianPostgres
from learnflow.db.migrate import migrate
from learnflow.db.roles import ROLES, grant_role_privileges, missing_roles
from webhook_service.certificates import (
    ProgramCertificate,
    RoleNotProvisionedError,
    list_program_certificates,
    write_program_certificates,
)

pytestmark = [pytest.mark.webhooks, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
OWNER, ADMIN, DB = "learnflow_owner", "learnflow_admin", "certs"


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    pg = DebianPostgres().start()
    try:
        yield pg.dsn
    finally:
        pg.stop()


def dsn_as(cluster: str, user: str, db: str) -> str:
    return cluster.replace("postgres@", f"{user}@").rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture
async def owner_conn(cluster: str) -> AsyncIterator[asyncpg.Connection]:
    su = await asyncpg.connect(cluster)
    try:
        await su.execute(f"CREATE ROLE {OWNER} LOGIN NOCREATEROLE NOSUPERUSER")
        # The admin of a managed service: may create roles, owns nothing of ours.
        await su.execute(f"CREATE ROLE {ADMIN} LOGIN CREATEROLE NOSUPERUSER")
        await su.execute(f"CREATE DATABASE {DB} OWNER {OWNER}")
    finally:
        await su.close()
    conn = await asyncpg.connect(dsn_as(cluster, OWNER, DB))
    try:
        yield conn
    finally:
        await conn.close()


def cert(email: str) -> ProgramCertificate:
    return ProgramCertificate(
        record_hash="h-" + email, program_title="Statistics and Data Science", user_email=email
    )


async def test_owner_without_createrole_migrates_then_admin_provisions(
    cluster: str, owner_conn: asyncpg.Connection
):
    notices: list[str] = []
    owner_conn.add_log_listener(lambda _conn, msg: notices.append(msg.message))
    applied = await migrate(owner_conn)
    assert "0002_program_certificate" in applied
    assert await owner_conn.fetchval("SELECT to_regclass('external.programcertificate')")
    assert await missing_roles(owner_conn) == list(ROLES)
    assert any("learn db provision-roles" in n for n in notices), notices

    # Both directions fail with the fix in the message, not asyncpg's bare error.
    with pytest.raises(RoleNotProvisionedError, match="learn db provision-roles"):
        await write_program_certificates(owner_conn, [cert("ada@example.com")])
    with pytest.raises(RoleNotProvisionedError, match="learn db provision-roles"):
        await list_program_certificates(owner_conn, "ada@example.com")

    # The admin step, as an operator runs it: the CLI, connected as the CREATEROLE admin.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "learn_cli.cli", "db", "provision-roles"]
    cmd += ["--dsn", dsn_as(cluster, ADMIN, DB), "--grant-to", OWNER]
    done = await asyncio.to_thread(
        subprocess.run, cmd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "learnflow_reverse_etl, learnflow_app" in done.stdout
    assert await missing_roles(owner_conn) == []

    # The admin owns nothing, so the grants are the owner's `learn migrate` (prepare_database).
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await write_program_certificates(owner_conn, [cert("ada@example.com")])
    assert await grant_role_privileges(owner_conn) == list(ROLES)
    assert await migrate(owner_conn) == []  # nothing re-applied: 0002 stays as it ran

    await write_program_certificates(owner_conn, [cert("ada@example.com")])
    certs = await list_program_certificates(owner_conn, "ADA@example.com")
    assert certs == [cert("ada@example.com")]
    # The app role still only reads.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with owner_conn.transaction():
            await owner_conn.execute("SET LOCAL ROLE learnflow_app")
            await owner_conn.execute("DELETE FROM external.programcertificate")
