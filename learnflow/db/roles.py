"""The NOLOGIN group roles of `external.programcertificate` (migration 0002): who creates them,
who grants them, and the clear error when they are missing.

Creating a role needs CREATEROLE (or superuser), which the schema owner usually lacks on managed
PostgreSQL. So migration 0002 creates the roles only when the migrating user may, and otherwise
leaves them to an admin step, `learn db provision-roles`, run once per cluster (roles are
cluster-wide). The table grants are re-applied by every `learn migrate` (the owner may always
grant on its own table), so the order of the two steps does not matter.
"""

from __future__ import annotations

import asyncpg

APP_ROLE = "learnflow_app"
REVERSE_ETL_ROLE = "learnflow_reverse_etl"
ROLES = (REVERSE_ETL_ROLE, APP_ROLE)

PROVISION_HINT = (
    "run `learn db provision-roles` as a user with CREATEROLE (or a superuser), "
    "then `learn migrate` as the schema owner"
)

# Per role: the statements that give it its rights (identifiers are constants). Also in migration
# 0002, which stays as applied; this is the live copy that `learn migrate` re-applies.
_GRANTS = {
    REVERSE_ETL_ROLE: (
        "GRANT USAGE ON SCHEMA external TO learnflow_reverse_etl",
        # SELECT too: upserts (ON CONFLICT DO UPDATE) and DELETE ... WHERE read the rows they change.
        "GRANT SELECT, INSERT, UPDATE, DELETE ON external.programcertificate"
        " TO learnflow_reverse_etl",
    ),
    APP_ROLE: (
        "GRANT USAGE ON SCHEMA external TO learnflow_app",
        "GRANT SELECT ON external.programcertificate TO learnflow_app",
    ),
}


def _ident(name: str) -> str:
    """A quoted SQL identifier: member names come from the command line."""
    return '"' + name.replace('"', '""') + '"'


class RoleNotProvisionedError(RuntimeError):
    """A certificate role is missing, or the connecting user may not act as it."""


async def missing_roles(conn: asyncpg.Connection) -> list[str]:
    present = await conn.fetch(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])", ROLES
    )
    names = {r["rolname"] for r in present}
    return [r for r in ROLES if r not in names]


async def grant_role_privileges(conn: asyncpg.Connection) -> list[str]:
    """Grant each existing role its rights on the certificate table; returns the roles granted.

    Idempotent; does nothing unless the connecting user owns the table (or is a superuser)."""
    # NULL: not migrated yet (0002 grants when it creates the table); false: not the owner (an
    # admin's provisioning), whose GRANT would fail or only warn; the owner's `learn migrate` does it.
    may_grant = await conn.fetchval(
        "SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'external' AND c.relname = 'programcertificate'"
    )
    if not may_grant:
        return []
    missing = set(await missing_roles(conn))
    granted = []
    async with conn.transaction():
        for role, statements in _GRANTS.items():
            if role in missing:
                continue
            for sql in statements:
                await conn.execute(sql)
            granted.append(role)
    return granted


async def provision_roles(conn: asyncpg.Connection, members: tuple[str, ...] = ()) -> list[str]:
    """Create the missing roles, grant them their rights, and grant both roles to `members`
    (login users such as the web service's). Returns the roles created now."""
    created = []
    async with conn.transaction():
        for role in await missing_roles(conn):
            await conn.execute(f"CREATE ROLE {_ident(role)} NOLOGIN")
            created.append(role)
        for member in members:
            for role in ROLES:
                await conn.execute(f"GRANT {_ident(role)} TO {_ident(member)}")
    await grant_role_privileges(conn)
    return created


async def set_local_role(conn: asyncpg.Connection, role: str) -> None:
    """`SET LOCAL ROLE role` inside the caller's transaction, or a RoleNotProvisionedError that
    names the fix instead of asyncpg's bare 'role does not exist' / 'permission denied'."""
    try:
        await conn.execute(f"SET LOCAL ROLE {_ident(role)}")
    except asyncpg.InvalidParameterValueError as exc:
        raise RoleNotProvisionedError(
            f'PostgreSQL role "{role}" does not exist ({exc}): {PROVISION_HINT}'
        ) from exc
    except asyncpg.InsufficientPrivilegeError as exc:
        raise RoleNotProvisionedError(
            f'the connecting user may not act as role "{role}" ({exc}): '
            f"`learn db provision-roles --grant-to <user>` or `GRANT {role} TO <user>`"
        ) from exc
