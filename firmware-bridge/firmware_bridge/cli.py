"""`oxy bridge` subcommands (heavy imports stay inside the commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

bridge_app = typer.Typer(
    no_args_is_help=True,
    help="Firmware bridge: Sparkplug B, LoRaWAN, vendor JSON, HTTP push → the wire contract.",
)


@bridge_app.command("run")
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="bridge TOML configuration")],
) -> None:
    """Run the bridge until interrupted (Ctrl-C)."""
    from firmware_bridge.runner import run_bridge

    run_bridge(config)


@bridge_app.command("hash-token")
def hash_token_cmd(token: str) -> None:
    """Print the sha256 to put in a device's `token_sha256` (HTTP push)."""
    from firmware_bridge.config import hash_token

    typer.echo(hash_token(token))


def register(app: typer.Typer) -> None:
    """Add this package's subcommands to the `oxy` app."""
    app.add_typer(bridge_app, name="bridge")
