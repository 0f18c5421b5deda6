"""`oxy dashboards` subcommands: build the provisioning files, push to Grafana, check the SQL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

dashboards_app = typer.Typer(
    no_args_is_help=True, help="Grafana dashboards, data sources and alert rules (as code)."
)


@dashboards_app.command("build")
def build(
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default: dashboards/provisioning in the source tree)."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only report files that are out of date (exit 1).")
    ] = False,
) -> None:
    """Write the file-based provisioning (data sources, dashboards JSON, alert rules)."""
    from dashboards.files import DEFAULT_OUT, stale_files, write_all

    target = out or DEFAULT_OUT
    if check:
        stale = stale_files(target)
        for rel in stale:
            typer.echo(f"out of date: {rel}")
        raise typer.Exit(1 if stale else 0)
    changed = write_all(target)
    typer.echo(f"provisioning written to {target} ({len(changed)} files changed)")


@dashboards_app.command("push")
def push(  # noqa: PLR0917  (typer maps each parameter to an option)
    url: Annotated[str, typer.Option(help="Grafana URL.", envvar="GRAFANA_URL")],
    token: Annotated[
        str | None, typer.Option(help="Grafana service-account token.", envvar="GRAFANA_TOKEN")
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="Grafana admin user (instead of a token).")
    ] = None,
    password: Annotated[
        str, typer.Option(help="Password of --user.", envvar="GRAFANA_PASSWORD")
    ] = "",
    db_host: Annotated[
        str, typer.Option(help="host:port of PostgreSQL as Grafana reaches it.")
    ] = "db:5432",
    db_name: Annotated[str, typer.Option(help="Database name.")] = "oxy",
    db_password: Annotated[
        str | None,
        typer.Option(
            help="Password of the read-only role oxy_grafana.", envvar="OXY_GRAFANA_DB_PASSWORD"
        ),
    ] = None,
    db_sslmode: Annotated[str, typer.Option(help="sslmode for the database.")] = "disable",
    prometheus_url: Annotated[
        str, typer.Option(help="Prometheus URL as Grafana reaches it.")
    ] = "http://prometheus:9090",
) -> None:
    """Provision data sources, folders, dashboards and alert rules; idempotent."""
    from dashboards.push import connect
    from dashboards.push import push as do_push
    from dashboards.sources import SourcesConfig

    sources = SourcesConfig(
        db_host=db_host,
        db_name=db_name,
        db_password=db_password,
        db_sslmode=db_sslmode,
        prometheus_url=prometheus_url,
    )
    report = do_push(connect(url, token=token, user=user, password=password), sources)
    for key in report.created:
        typer.echo(f"created {key}")
    for key in report.updated:
        typer.echo(f"updated {key}")
    typer.echo(report.summary())


@dashboards_app.command("check")
def check(
    database_url: Annotated[
        str, typer.Option(help="Database URL (default OXY_DATABASE_URL).")
    ] = "",
    role: Annotated[
        str | None, typer.Option(help="SET ROLE before querying, e.g. oxy_grafana.")
    ] = None,
    days: Annotated[float, typer.Option(help="Time range: the last N days.")] = 7.0,
) -> None:
    """Run every panel, variable and alert query against a database (read-only)."""
    from datetime import timedelta

    import psycopg
    from psycopg import sql

    from dashboards.catalog import ALERT_RULES, DASHBOARDS
    from dashboards.check import check_alert, check_dashboard
    from dashboards.macros import TimeRange
    from oxy.database import database_url as resolve_db
    from oxy.settings import load_settings

    settings = load_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    with resolve_db(settings) as url, psycopg.connect(url) as conn:
        conn.read_only = True
        if role:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        rng = TimeRange.last(timedelta(days=days))
        count = 0
        for dash in DASHBOARDS:
            for result in check_dashboard(conn, dash, rng):
                count += 1
                typer.echo(f"ok  {result.source}: {len(result.rows)} rows")
        for rule in ALERT_RULES:
            result = check_alert(conn, rule)
            count += 1
            typer.echo(f"ok  {result.source}: {result.rows}")
    typer.echo(f"{count} queries ran")


def register(app: typer.Typer) -> None:
    """Add this package's subcommands to the `oxy` app."""
    app.add_typer(dashboards_app, name="dashboards")
