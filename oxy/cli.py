"""The `oxy` command. Each package adds its subcommands; heavy imports happen inside commands so
that `oxy gateway run` on a small edge box never loads the centre's stack."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Annotated

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
def db_seed_demo(
    scale: Annotated[
        str, typer.Option(help="demo: the 13-hospital demo country; national: 34 provinces.")
    ] = "demo",
    facilities: Annotated[int, typer.Option(help="National scale: facilities.")] = 2000,
    tanks: Annotated[
        int, typer.Option(help="National scale: LOX tanks (1-3 per facility).")
    ] = 3000,
    history_days: Annotated[float, typer.Option(help="National scale: days of history.")] = 30.0,
    history_step: Annotated[
        int, typer.Option(help="National scale: seconds between history readings (>= 60).")
    ] = 300,
) -> None:
    """Seed the demo country (provinces, facilities, tanks, suppliers, gateways, accounts)."""
    from oxy.database import database_url
    from oxy.migrate import migrate

    if scale not in ("demo", "national"):
        raise OxyError(f"--scale {scale}: use demo or national")
    settings = load_settings()
    with database_url(settings) as url:
        migrate(url)
        if scale == "demo":
            from oxy.demo_seed import seed_demo

            typer.echo(seed_demo(url))
            return
        # The national country lives above the core, in the demo package: found by name, like
        # every package's subcommands (COMMAND_MODULES), so the core imports nothing above it.
        national = importlib.import_module("demo.national")
        try:
            size = national.NationalScale(
                facilities, tanks, history_days=history_days, history_step_s=history_step
            )
        except ValueError as exc:
            raise OxyError(str(exc)) from exc
        summary = national.seed_national(url, size)
    typer.echo(summary)
    if summary.password:
        path = settings.data_dir / "national" / "password.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(summary.password + "\n")
        typer.echo(
            f"accounts nat-byt, nat-syt-<province>, nat-<facility code>, nat-kysu share the "
            f"password in {path}"
        )


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
    "registry": "api.registry.cli",
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
