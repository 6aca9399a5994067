"""Versioned SQL migrations: `migrations/NNNN_name.sql` applied in name order, each in its own
transaction, recorded in `schema_migrations`. An advisory lock makes concurrent starts safe.

Plain SQL files rather than Alembic: the schema is owned by this project alone, there is no ORM
to autogenerate from, and SQL files are what a DBA reviews.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import structlog

if TYPE_CHECKING:
    from learnflow.stores import Stores

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK_ID = 4_242_001


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("*.sql"))


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations; returns the versions applied now."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_on timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for path in migration_files():
            version = path.stem
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    return applied_now


async def prepare_database(stores: Stores) -> None:
    """Migrate and load reference data: what `learn migrate` and `learn up` do before serving."""
    from learnflow.db.roles import PROVISION_HINT, grant_role_privileges, missing_roles
    from learnflow.reference import reference_data

    async with stores.pool.acquire() as conn:
        applied = await migrate(conn)
        # Roles an admin provisioned after 0002 ran get their grants here (db/roles.py).
        await grant_role_privileges(conn)
        missing = await missing_roles(conn)
    if applied:
        log.info("db.migrated", applied=applied)
    if missing:
        log.warning("db.roles_missing", roles=missing, fix=PROVISION_HINT)
    await stores.catalog.load_reference_data(reference_data())
