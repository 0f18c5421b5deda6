"""`oxy alerts` subcommands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `oxy alerts run` to the `oxy` app."""
    alerts = typer.Typer(no_args_is_help=True, help="Alert evaluation and notifications.")

    @alerts.command("run")
    def run() -> None:
        """Evaluate alert rules every interval and send notifications (until stopped)."""
        import asyncio
        import contextlib

        from api.alerts.service import serve
        from oxy.database import database_url
        from oxy.logs import setup_logging
        from oxy.settings import load_settings

        settings = load_settings()
        setup_logging(settings.log_level, settings.log_json)
        with database_url(settings) as url, contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(settings.model_copy(update={"database_url": url})))

    app.add_typer(alerts, name="alerts")
