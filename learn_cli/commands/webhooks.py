"""`learn webhooks serve`: the signed-webhook HTTP service (uvicorn)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    webhooks = typer.Typer(help="Inbound webhooks that start workflows.", no_args_is_help=True)

    @webhooks.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
        port: int = typer.Option(8089, help="TCP port."),
        workers: int = typer.Option(1, help="uvicorn worker processes."),
    ) -> None:
        """Serve the webhook endpoints; config from WEBHOOK_* / OCW_* / OVS_* env variables."""
        import uvicorn

        from webhook_service.config import webhook_config

        try:  # fail fast on a bad configuration, before binding
            config = webhook_config()
        except ValueError as exc:
            typer.echo(f"webhooks: bad configuration: {exc}", err=True)
            raise typer.Exit(2) from exc
        if config.schemes and not config.secrets:
            typer.echo("webhooks: set WEBHOOK_SECRET or WEBHOOK_SECRETS", err=True)
            raise typer.Exit(2)
        uvicorn.run(
            "webhook_service.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=True,
            access_log=False,
        )

    app.add_typer(webhooks, name="webhooks")
