"""`learn db provision-roles`: the admin step that creates the certificate roles when the schema
owner may not (no CREATEROLE, as on managed PostgreSQL; learnflow/db/roles.py)."""

from __future__ import annotations

import asyncio

import typer


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="Database administration.", no_args_is_help=True)

    @db.command("provision-roles")
    def provision_roles_cmd(
        dsn: str = typer.Option(
            "",
            help="Connect as this admin (CREATEROLE or superuser); default DATABASE_URL.",
        ),
        grant_to: list[str] = typer.Option(
            [], "--grant-to", help="Login user to grant both roles to (repeatable)."
        ),
    ) -> None:
        """Create learnflow_app and learnflow_reverse_etl (idempotent) and grant their rights."""
        import asyncpg

        from learnflow.db.roles import ROLES, missing_roles, provision_roles
        from learnflow.settings import get_settings

        url = dsn or get_settings().database_url
        if not url:
            typer.echo("db: give --dsn or set DATABASE_URL", err=True)
            raise typer.Exit(2)

        async def go() -> list[str]:
            conn = await asyncpg.connect(url)
            try:
                created = await provision_roles(conn, tuple(grant_to))
                if await missing_roles(conn):
                    raise RuntimeError("roles still missing after provisioning")
                return created
            finally:
                await conn.close()

        try:
            created = asyncio.run(go())
        except asyncpg.InsufficientPrivilegeError as exc:
            typer.echo(f"db: {exc}: connect as a user with CREATEROLE or a superuser", err=True)
            raise typer.Exit(1) from exc
        typer.echo(f"roles created: {', '.join(created) or 'none (all present)'}")
        typer.echo(f"roles present: {', '.join(ROLES)}; then run `learn migrate` as the owner")

    app.add_typer(db, name="db")
