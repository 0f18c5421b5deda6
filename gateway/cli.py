"""`oxy` subcommands of the gateway package (heavy imports stay inside the commands).

`oxy gateway run|status` for the edge box and `oxy sim run|fault` for the LOX tank simulator.
The same commands run without typer as `python -m gateway ...` (see gateway/__main__.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOpt = Annotated[
    list[Path], typer.Option("--config", "-c", help="Site configuration TOML (repeatable).")
]


def register(app: typer.Typer) -> None:
    """Add this package's subcommands to the `oxy` app."""
    gw = typer.Typer(
        no_args_is_help=True, help="Edge gateway: Modbus → MQTT with a durable outbox."
    )
    sim = typer.Typer(no_args_is_help=True, help="LOX tank simulator (Modbus TCP servers).")
    app.add_typer(gw, name="gateway")
    app.add_typer(sim, name="sim")

    @gw.command("run")
    def gateway_run(
        config: ConfigOpt,
        log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    ) -> None:
        """Poll the devices and publish their readings (several sites may share one process)."""
        from gateway.main import run_gateway_command

        run_gateway_command(config, log_level)

    @gw.command("status")
    def gateway_status(
        config: ConfigOpt,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Show devices, broker link, outbox depth/age and evictions, read from the local files."""
        from gateway.main import status_command

        typer.echo(status_command(config, json_out))

    @sim.command("run")
    def sim_run(
        config: Annotated[Path, typer.Option("--config", "-c", help="Simulator TOML.")],
        log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    ) -> None:
        """Run the simulated tanks' Modbus servers until stopped."""
        from gateway.main import run_sim_command

        run_sim_command(config, log_level)

    @sim.command("fault")
    def sim_fault(
        config: Annotated[Path, typer.Option("--config", "-c", help="Simulator TOML.")],
        tank: Annotated[str, typer.Argument(help="Tank code.")],
        kind: Annotated[
            str, typer.Argument(help="stuck, out_of_range, unreachable, exception or none.")
        ],
        duration: Annotated[float, typer.Option(help="Seconds; 0 = until cleared.")] = 0.0,
    ) -> None:
        """Switch a fault on (or `none` to clear it) in a running simulator."""
        from gateway.main import sim_fault_command

        typer.echo(sim_fault_command(config, tank, kind, duration))
