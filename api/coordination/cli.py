"""`oxy coordination` subcommands."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `oxy coordination sync` to the `oxy` app."""
    coordination = typer.Typer(no_args_is_help=True, help="Supply coordination jobs.")

    @coordination.command("sync")
    def sync(
        once: Annotated[
            bool, typer.Option("--once", help="Run one round and exit (cron, a manual catch-up).")
        ] = False,
        interval: Annotated[
            float, typer.Option("--interval", min=1.0, help="Seconds between rounds.")
        ] = 60.0,
    ) -> None:
        """Take supplier-report lines into deliveries and match deliveries with the refills."""
        import asyncio
        import contextlib

        from api.coordination.service import once as run_one_round
        from api.coordination.service import serve
        from oxy.database import database_url
        from oxy.logs import setup_logging
        from oxy.settings import load_settings

        settings = load_settings()
        setup_logging(settings.log_level, settings.log_json)
        with database_url(settings) as url:
            resolved = settings.model_copy(update={"database_url": url})
            if once:
                done = asyncio.run(run_one_round(resolved))
                if not done.ran:
                    typer.echo("another sync is running; nothing done")
                    return
                typer.echo(
                    f"new supplier-report lines: {done.new_lines}; "
                    f"deliveries re-examined: {done.examined}"
                )
                return
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(serve(resolved, interval))

    app.add_typer(coordination, name="coordination")
