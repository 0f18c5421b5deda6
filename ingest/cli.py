"""`oxy` subcommands of the ingest package (heavy imports stay inside the commands)."""

from __future__ import annotations

from typing import Annotated

import typer

ingest_app = typer.Typer(no_args_is_help=True, help="MQTT → database ingest service.")


@ingest_app.callback()
def _group() -> None:
    """MQTT → database ingest service (keeps `run` a subcommand under `python -m ingest`)."""


@ingest_app.command("run")
def run(
    *,
    mqtt_url: Annotated[str, typer.Option(help="Broker URL (default OXY_MQTT_URL).")] = "",
    database_url: Annotated[
        str, typer.Option(help="Database URL (default OXY_DATABASE_URL).")
    ] = "",
    client_id: Annotated[str, typer.Option(help="Fixed MQTT client id (persistent session).")] = "",
    group: Annotated[str, typer.Option(help="Shared-subscription group.")] = "",
    protocol: Annotated[
        str,
        typer.Option(
            envvar="OXY_INGEST_PROTOCOL",
            help="MQTT protocol: 5, 3.1.1 (one worker, no $share) or auto (ask the broker).",
        ),
    ] = "auto",
    load: Annotated[str, typer.Option(help="Bulk load method: copy or unnest.")] = "copy",
) -> None:
    """Consume gateway messages and write them to the database (ack after commit)."""
    _serve(
        mqtt_url=mqtt_url,
        database_url=database_url,
        client_id=client_id,
        group=group,
        protocol=protocol,
        load=load,
        drain=False,
    )


def _serve(
    *,
    mqtt_url: str,
    database_url: str,
    client_id: str,
    group: str,
    protocol: str,
    load: str,
    drain: bool,
    drain_idle_s: float = 5.0,
) -> None:
    import signal

    from ingest.service import IngestConfig, IngestService, tune_gc
    from oxy.database import database_url as resolve_db
    from oxy.logs import setup_logging
    from oxy.settings import load_settings

    if protocol not in {"5", "3.1.1", "auto"}:
        raise typer.BadParameter("protocol must be 5, 3.1.1 or auto")
    if load not in {"copy", "unnest"}:
        raise typer.BadParameter("load must be copy or unnest")
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_json)
    broker = mqtt_url or settings.mqtt_url or "mqtt://127.0.0.1:1883"
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    with resolve_db(settings) as url:
        cfg = IngestConfig(
            mqtt_url=broker,
            database_url=url,
            client_id=client_id or settings.ingest_client_id,
            group=group or settings.ingest_group,
            protocol="5" if protocol == "5" else "3.1.1" if protocol == "3.1.1" else "auto",
            batch_size=settings.ingest_batch_size,
            batch_ms=settings.ingest_batch_ms,
            max_future_s=settings.ingest_max_future_s,
            ts_floor=settings.ingest_ts_floor,
            poison_after=settings.ingest_poison_after,
            exit_on_writer_death=True,
            rollup_every_s=settings.ingest_rollup_s,
            metrics_port=0 if drain else settings.metrics_port,
            load_method="copy" if load == "copy" else "unnest",
            drain=drain,
            drain_idle_s=drain_idle_s,
        )
        service = IngestService(cfg)
        tune_gc()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: service.stop())
        service.run()
        if drain and not service.drained:
            typer.echo(f"session {cfg.client_id} NOT drained (stopped early); run again", err=True)
            raise typer.Exit(1)
        if drain:
            typer.echo(f"session {cfg.client_id} drained, out of group {cfg.group}, ended")


@ingest_app.command("drain")
def drain(
    client_id: Annotated[
        str, typer.Option(help="Client id of the retired worker whose session is drained.")
    ],
    *,
    mqtt_url: Annotated[str, typer.Option(help="Broker URL (default OXY_MQTT_URL).")] = "",
    database_url: Annotated[
        str, typer.Option(help="Database URL (default OXY_DATABASE_URL).")
    ] = "",
    group: Annotated[str, typer.Option(help="Shared-subscription group.")] = "",
    idle_s: Annotated[
        float, typer.Option(min=0.5, help="Seconds without a message before it ends.")
    ] = 5.0,
) -> None:
    """Retire an ingest worker: store what the broker queued for its session, leave the
    shared group, end the session (else Mosquitto goes on handing it its share for 7 days)."""
    _serve(
        mqtt_url=mqtt_url,
        database_url=database_url,
        client_id=client_id,
        group=group,
        protocol="5",
        load="copy",
        drain=True,
        drain_idle_s=idle_s,
    )


@ingest_app.command("replay-quarantine")
def replay_quarantine(
    database_url: Annotated[
        str, typer.Option(help="Database URL (default OXY_DATABASE_URL).")
    ] = "",
) -> None:
    """Store quarantined readings whose gateway and sensor are registered now."""
    from ingest.quarantine import replay
    from oxy.database import connect
    from oxy.database import database_url as resolve_db
    from oxy.settings import load_settings

    settings = load_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    with resolve_db(settings) as url, connect(url) as conn:
        result = replay(conn)
    typer.echo(
        f"released {result.released} (new readings {result.inserted}); "
        f"kept {result.kept} (see quarantine.reason)"
    )


def register(app: typer.Typer) -> None:
    """Add this package's subcommands to the `oxy` app."""
    app.add_typer(ingest_app, name="ingest")
