"""`oxy broker config`: write the product's Mosquitto configuration (oxy.broker.render) to a file.

Presets give the configurations the compose stack mounts (deploy/mosquitto/*.conf); options
override any preset value, for a broker installed by other means.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from oxy.broker import BrokerConfig

# Inside the eclipse-mosquitto container of docker-compose.yml: listen on every interface of
# the container, data on the named volume, credentials rendered by `oxy devices` into the
# mounted auth folder, certificates (TLS preset) from the mounted certs folder.
COMPOSE = BrokerConfig(
    port=1883,
    bind="0.0.0.0",  # noqa: S104  (inside a container; published ports are chosen in compose)
    data_dir=Path("/mosquitto/data"),
    password_file=Path("/mosquitto/auth/passwd"),
    acl_file=Path("/mosquitto/auth/acl"),
    log_dest="stdout",
)
COMPOSE_TLS = replace(
    COMPOSE,
    tls_port=8883,
    certfile=Path("/mosquitto/certs/server.crt"),
    keyfile=Path("/mosquitto/certs/server.key"),
    cafile=Path("/mosquitto/certs/ca.crt"),
)
PRESETS = {"default": BrokerConfig(), "compose": COMPOSE, "compose-tls": COMPOSE_TLS}

broker_app = typer.Typer(no_args_is_help=True, help="The product's Mosquitto configuration.")


@broker_app.command("config")
def config(  # noqa: PLR0917  (typer maps each parameter to an option)
    out: Annotated[Path | None, typer.Option(help="File to write (default: print).")] = None,
    preset: Annotated[str, typer.Option(help="default, compose or compose-tls.")] = "default",
    port: Annotated[int | None, typer.Option(help="Plain MQTT listener port.")] = None,
    bind: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Persistence folder.")] = None,
    password_file: Annotated[Path | None, typer.Option(help="password_file path.")] = None,
    acl_file: Annotated[Path | None, typer.Option(help="acl_file path.")] = None,
    user: Annotated[
        str | None, typer.Option(help="User the broker runs as after dropping root.")
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Check here that this user can write the persistence folder.")
    ] = False,
) -> None:
    """Render mosquitto.conf (persistence, byte-bounded queues, per-gateway ACLs)."""
    from oxy.broker import persistence_problem, render

    if preset not in PRESETS:
        raise typer.BadParameter(f"preset must be one of {', '.join(PRESETS)}")
    cfg = PRESETS[preset]
    overrides = {
        "port": port,
        "bind": bind,
        "data_dir": data_dir,
        "password_file": password_file,
        "acl_file": acl_file,
        "user": user,
    }
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    text = render(cfg)
    if check and (problem := persistence_problem(cfg)):
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add `oxy broker` to the `oxy` app."""
    app.add_typer(broker_app, name="broker")
