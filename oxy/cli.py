"""The `oxy` command. Each package adds its subcommands; heavy imports happen inside commands so
that `oxy gateway run` on a small edge box never loads the centre's stack."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import typer

from oxy import OxyError
from oxy.settings import load_settings

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Oxygen platform / Nền tảng oxy y tế"
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema and data.")
app.add_typer(db_app, name="db")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations and load reference data (idempotent)."""
    from oxy.database import database_url
    from oxy.migrate import migrate

    settings = load_settings()
    with database_url(settings) as url:
        applied = migrate(url)
    typer.echo(
        f"migrations applied: {len(applied)}" + (f" ({', '.join(applied)})" if applied else "")
    )


@db_app.command("seed-demo")
def db_seed_demo() -> None:
    """Seed the demo country (provinces, facilities, tanks, suppliers, gateways, accounts)."""
    from oxy.database import database_url
    from oxy.demo_seed import seed_demo
    from oxy.migrate import migrate

    settings = load_settings()
    with database_url(settings) as url:
        migrate(url)
        summary = seed_demo(url)
    typer.echo(summary)


# Which module adds each subcommand. `oxy <command>` imports only that module, so the edge box's
# `oxy gateway run` stays small; `oxy --help` imports them all to list everything.
COMMAND_MODULES: dict[str, str] = {
    "gateway": "gateway.cli",
    "sim": "gateway.cli",
    "ingest": "ingest.cli",
    "api": "api.cli",
    "users": "api.cli",
    "devices": "api.cli",
    "alerts": "api.alerts.cli",
    "coordination": "api.coordination.cli",
    "dashboards": "dashboards.cli",
    "bridge": "firmware_bridge.cli",
    "registry": "oxy.registry_cli",
    "broker": "oxy.broker_cli",
    "demo": "demo.cli",
}


def _register_packages(argv: Sequence[str] = ()) -> None:
    command = next((a for a in argv if not a.startswith("-")), None)
    if command == "db":
        return
    wanted = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else COMMAND_MODULES.values()
    for module in dict.fromkeys(wanted):
        importlib.import_module(module).register(app)


def main() -> None:
    """Entry point: run the CLI, turning expected errors into one clear line."""
    _register_packages(sys.argv[1:])
    try:
        code = app(standalone_mode=False)
        # Without standalone mode click returns a command's `typer.Exit(code)` instead of exiting.
        if isinstance(code, int) and not isinstance(code, bool) and code:
            sys.exit(code)
    except OxyError as exc:
        typer.echo(f"oxy: error: {exc}", err=True)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
