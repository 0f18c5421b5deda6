"""The `oxy` command. Each package adds its subcommands; heavy imports happen inside commands so
that `oxy gateway run` on a small edge box never loads the centre's stack."""

from __future__ import annotations

import sys

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


@app.command("demo")
def demo() -> None:
    """Run the whole platform on this machine with embedded defaults (Ctrl-C stops it)."""
    from oxy.demo import run_demo

    run_demo(load_settings())


def _register_packages() -> None:
    from firmware_bridge.cli import register as register_bridge

    from api.cli import register as register_api
    from dashboards.cli import register as register_dashboards
    from gateway.cli import register as register_gateway
    from ingest.cli import register as register_ingest

    for register in (
        register_gateway,
        register_ingest,
        register_api,
        register_dashboards,
        register_bridge,
    ):
        register(app)


def main() -> None:
    """Entry point: run the CLI, turning expected errors into one clear line."""
    _register_packages()
    try:
        app(standalone_mode=False)
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
