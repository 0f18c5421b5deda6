"""`oxy registry ...`: bulk registry import (heavy imports stay inside the commands)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

MAX_LISTED = 500  # beyond this the rest is counted; --json always lists everything


def register(app: typer.Typer) -> None:
    """Add the `registry` subcommands to the `oxy` app."""
    registry_app = typer.Typer(no_args_is_help=True, help="Registry of organisations and assets.")
    app.add_typer(registry_app, name="registry")

    @registry_app.command("import")
    def import_(
        files: Annotated[
            list[Path],
            typer.Argument(
                help="CSV files (one kind each) and/or .xlsx workbooks (a sheet per kind)."
            ),
        ],
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Validate and report; write nothing.")
        ] = False,
        kind: Annotated[
            str | None,
            typer.Option(
                "--kind",
                help="Kind of every CSV file: facilities, suppliers, tanks, "
                "calibration_points or contacts (default: from the file name or header).",
            ),
        ] = None,
        skip_bad_rows: Annotated[
            bool,
            typer.Option(
                "--skip-bad-rows",
                help="Store the good rows even when some are bad (default: all or nothing).",
            ),
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    ) -> None:
        """Load facilities, suppliers, tanks, calibration tables and contacts in bulk."""
        from api.registry.importer import RegistryImportError, run_import
        from oxy.database import database_url
        from oxy.settings import load_settings

        settings = load_settings()
        with database_url(settings) as url:
            report = run_import(url, files, kind=kind, dry_run=dry_run, skip_bad_rows=skip_bad_rows)
        if as_json:
            typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        else:
            for issue in report.issues[:MAX_LISTED]:
                typer.echo(f"error: {issue}")
            if len(report.issues) > MAX_LISTED:
                typer.echo(f"... and {len(report.issues) - MAX_LISTED} more (use --json)")
            for note in report.notes[:MAX_LISTED]:
                typer.echo(f"note: {note}")
            for k, c in report.counts.items():
                typer.echo(
                    f"{k}: {c.inserted} new, {c.updated} updated, {c.unchanged} unchanged"
                    + (f", {c.skipped} skipped" if c.skipped else "")
                )
            bad = f"{report.bad_rows} bad rows ({len(report.issues)} problems)"
            if report.committed:
                typer.echo(f"stored; {bad} skipped" if report.issues else "stored")
            elif dry_run:
                typer.echo(
                    "dry run: nothing written; " + (bad if report.issues else "all rows valid")
                )
            else:
                typer.echo(
                    f"nothing written: {bad} "
                    "(fix them, or use --skip-bad-rows to store the good ones)"
                )
        if report.issues:
            # An OxyError: `oxy` prints it as one line and exits non-zero.
            raise RegistryImportError(
                f"{report.bad_rows} bad rows in the import"
                + (" (skipped)" if report.committed else "; nothing was written")
            )

    @registry_app.command("template")
    def template(
        path: Annotated[Path, typer.Argument(help="Where to write the .xlsx template.")],
    ) -> None:
        """Write an empty import workbook: one sheet per kind with its columns."""
        from api.registry.importer import write_template

        write_template(path)
        typer.echo(f"template written to {path}")
