"""`oxy` subcommands of the api package (heavy imports stay inside the commands):
`oxy api run|grafana-role`, `oxy users ...`, `oxy devices ...`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

api_app = typer.Typer(no_args_is_help=True, help="Web UI and HTTP API.")
users_app = typer.Typer(
    no_args_is_help=True, help="People's accounts (issued, never self-registered)."
)
devices_app = typer.Typer(
    no_args_is_help=True, help="MQTT credentials and ACLs of gateways and services."
)

PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(envvar="OXY_MQTT_PASSWORD_FILE", help="Mosquitto password_file to (re)write."),
]
AclFileOpt = Annotated[
    Path | None, typer.Option(envvar="OXY_MQTT_ACL_FILE", help="Mosquitto acl_file to (re)write.")
]
PidOpt = Annotated[
    int | None,
    typer.Option(envvar="OXY_MQTT_BROKER_PID", help="Broker pid to SIGHUP after writing."),
]
PidFileOpt = Annotated[
    Path | None,
    typer.Option(envvar="OXY_MQTT_BROKER_PID_FILE", help="File holding the broker pid to SIGHUP."),
]


def register(app: typer.Typer) -> None:
    """Add this package's subcommands to the `oxy` app."""
    app.add_typer(api_app, name="api")
    app.add_typer(users_app, name="users")
    app.add_typer(devices_app, name="devices")


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no passwd entry in some containers
        return "cli"


# ------------------------------------------------------------------------------------ api


@api_app.command("run")
def api_run(
    host: Annotated[str | None, typer.Option(help="Bind address (default OXY_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OXY_API_PORT).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the web UI and API with uvicorn."""
    import socket

    import uvicorn

    from api.app import create_app
    from api.settings import load_centre_settings
    from oxy import OxyError
    from oxy.database import database_url
    from oxy.logs import setup_logging
    from oxy.settings import load_settings

    settings = load_settings()
    # The whole tree, before the port or the database is touched (workers build their own).
    load_centre_settings(settings)
    setup_logging(settings.log_level, settings.log_json)
    bind_host = host or settings.api_host
    bind_port = port or settings.api_port
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((bind_host, bind_port))
        except OSError as exc:
            raise OxyError(
                f"cannot listen on {bind_host}:{bind_port} ({exc.strerror}); stop what uses it "
                "or choose another with --port / OXY_API_PORT"
            ) from exc
    with database_url(settings) as url:
        common: dict[str, Any] = {"host": bind_host, "port": bind_port}
        if workers > 1:
            # Worker processes build their own app from the environment (the API is stateless).
            os.environ["OXY_DATABASE_URL"] = url
            target: Any = "api.app:create_served_app"
            common |= {"factory": True, "workers": workers}
        else:
            target = create_app(
                settings.model_copy(update={"database_url": url}), windows_ahead=True
            )
        uvicorn.run(
            target,
            **common,
            proxy_headers=True,
            forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
            log_level=settings.log_level.lower(),
            access_log=False,
            server_header=False,
        )


@api_app.command("grafana-role")
def grafana_role(
    password_env: Annotated[
        str, typer.Option(help="Environment variable holding the password.")
    ] = "OXY_GRAFANA_DB_PASSWORD",  # noqa: S107 - the variable's name
) -> None:
    """Let Grafana log in as the read-only `oxy_grafana` role (password from the environment)."""
    import psycopg
    from psycopg import sql

    from oxy import OxyError
    from oxy.database import database_url
    from oxy.settings import load_settings

    password = os.environ.get(password_env, "")
    if len(password) < 16:
        raise OxyError(f"set {password_env} to a password of at least 16 characters")
    with database_url(load_settings()) as url, psycopg.connect(url, autocommit=True) as conn:
        # Utility statements take no bind parameters; sql.Literal quotes safely.
        conn.execute(
            sql.SQL("ALTER ROLE oxy_grafana LOGIN PASSWORD {}").format(sql.Literal(password))
        )
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA grafana TO oxy_grafana")
    typer.echo("oxy_grafana may now log in (read-only, schema grafana)")


# ---------------------------------------------------------------------------------- users


def _run_users(fn: Any) -> Any:
    """Run an async account operation in one committed transaction."""
    import asyncio

    from psycopg import AsyncConnection

    from oxy.database import database_url
    from oxy.settings import load_settings

    async def go(url: str) -> Any:
        async with await AsyncConnection.connect(url) as conn:
            result = await fn(conn)
            await conn.commit()
            return result

    with database_url(load_settings()) as url:
        return asyncio.run(go(url))


def _password_from(stdin: bool) -> str:
    import sys

    from api.users import UserError

    if stdin:
        value = sys.stdin.readline().rstrip("\n")
        if not value:
            raise UserError("no password on standard input")
        return value
    from api.accounts.users_pages import _temp_password

    return _temp_password()


@users_app.command("add")
def users_add(  # noqa: PLR0917 - typer options
    username: str,
    role: Annotated[str, typer.Option(help="admin|byt|syt|facility|supplier|engineer")],
    name: Annotated[str, typer.Option(help="Full name shown in the UI.")],
    org: Annotated[
        str | None, typer.Option(help="Organisation code (SYT-79, BV-..., ...).")
    ] = None,
    facility: Annotated[
        list[str] | None, typer.Option(help="Engineer: a facility code (repeatable).")
    ] = None,
    national: Annotated[bool, typer.Option(help="Engineer: national scope.")] = False,
    locale: Annotated[str, typer.Option(help="vi or en")] = "vi",
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from stdin instead of generating one.")
    ] = False,
) -> None:
    """Issue an account (prints a temporary password unless --password-stdin)."""
    from api.scope import Role
    from api.users import NewUser, UserError, create_user

    try:
        r = Role(role)
    except ValueError as exc:
        raise UserError(f"unknown role {role}") from exc
    password = _password_from(password_stdin)
    new = NewUser(username, name, r, password, org, locale, national, tuple(facility or ()))
    uid = _run_users(lambda conn: create_user(conn, _actor(), new))
    typer.echo(f"account {new.username.lower()} created (id {uid}, role {r.value})")
    if not password_stdin:
        typer.echo(f"temporary password: {password}")


def _set_active(username: str, active: bool) -> None:
    from api.users import find_user, set_active

    async def go(conn: Any) -> None:
        user = await find_user(conn, username)
        await set_active(conn, _actor(), user["id"], active)

    _run_users(go)
    typer.echo(f"account {username} {'enabled' if active else 'disabled'}")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable an account; its sessions and tokens stop working at once."""
    _set_active(username, False)


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Enable a disabled account."""
    _set_active(username, True)


@users_app.command("reset-password")
def users_reset_password(
    username: str,
    password_stdin: Annotated[bool, typer.Option(help="Read the new password from stdin.")] = False,
) -> None:
    """Set a temporary password (changed at next login); ends the user's sessions."""
    from api.users import find_user, reset_password

    password = _password_from(password_stdin)

    async def go(conn: Any) -> None:
        user = await find_user(conn, username)
        await reset_password(conn, _actor(), user["id"], password)

    _run_users(go)
    typer.echo(f"password of {username} reset")
    if not password_stdin:
        typer.echo(f"temporary password: {password}")


@users_app.command("scope")
def users_scope(
    username: str,
    national: Annotated[
        bool, typer.Option("--national/--no-national", help="National engineer scope.")
    ] = False,
    facility: Annotated[
        list[str] | None, typer.Option(help="An assigned facility code (repeatable).")
    ] = None,
) -> None:
    """Replace an engineer's scope (national flag and facilities); ends their sessions."""
    from api.users import find_user, set_engineer_scope

    codes = tuple(facility or ())

    async def go(conn: Any) -> None:
        user = await find_user(conn, username)
        await set_engineer_scope(
            conn, _actor(), user["id"], national=national, facility_codes=codes
        )

    _run_users(go)
    where = "national" if national else "not national"
    typer.echo(f"scope of {username} set: {where}, facilities: {' '.join(codes) or '-'}")


@users_app.command("list")
def users_list() -> None:
    """List the accounts."""
    from api.users import list_users

    rows = _run_users(list_users)
    for u in rows:
        state = "active" if u["is_active"] else "disabled"
        scope = u["org_code"] or (
            "national" if u["national"] or u["role"] in ("admin", "byt") else "-"
        )
        typer.echo(f"{u['username']:<24} {u['role']:<9} {scope:<20} {state:<8} {u['display_name']}")


@users_app.command("token")
def users_token(
    username: str, name: Annotated[str, typer.Option(help="What the token is for.")] = "cli"
) -> None:
    """Issue an API bearer token for a user (printed once)."""
    from api.audit import audit
    from api.auth import issue_token
    from api.users import find_user

    async def go(conn: Any) -> str:
        user = await find_user(conn, username)
        issued = await issue_token(conn, user["id"], name)
        await audit(conn, _actor(), "create", "api_token", issued.id, None, {"user": username})
        return issued.secret

    typer.echo(_run_users(go))


# -------------------------------------------------------------------------------- devices


def _device_files(password_file: Path | None, acl_file: Path | None) -> tuple[Path, Path]:
    from oxy.settings import load_settings

    base = load_settings().data_dir / "mosquitto"
    return password_file or base / "passwd", acl_file or base / "acl"


def _sync_broker(
    conn: Any,
    password_file: Path | None,
    acl_file: Path | None,
    pid: int | None,
    pid_file: Path | None,
) -> None:
    import os

    from api.devices import DeviceError, reload_broker, write_files

    pw, acl = _device_files(password_file, acl_file)
    n = write_files(conn, pw, acl, os.environ.get("OXY_MQTT_FILE_OWNER") or None)
    typer.echo(f"wrote {pw} and {acl} ({n} active accounts)")
    if pid is None and pid_file is not None:
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError) as exc:
            raise DeviceError(f"cannot read the broker pid from {pid_file}") from exc
    if pid is not None:
        reload_broker(pid)
        typer.echo(f"broker {pid} reloaded")
    else:
        typer.echo(
            "reload the broker to apply: kill -HUP <mosquitto pid> (or systemctl reload mosquitto)"
        )


def _sync_or_explain(
    conn: Any,
    password_file: Path | None,
    acl_file: Path | None,
    pid: int | None,
    pid_file: Path | None,
) -> bool:
    """_sync_broker, but a failure (files, reload) is explained instead of raised: the database
    change is already made, so the caller still prints what the operator needs (a password)."""
    from api.devices import DeviceError

    try:
        _sync_broker(conn, password_file, acl_file, pid, pid_file)
    except (DeviceError, OSError) as exc:
        typer.echo(
            f"error: the account is saved, but the broker was not updated: {exc}\n"
            "apply it by hand: `oxy devices render` (same --password-file/--acl-file), then "
            "reload the broker: kill -HUP <mosquitto pid>, systemctl reload mosquitto, or "
            "docker compose kill -s HUP mosquitto",
            err=True,
        )
        return False
    return True


def _devices_conn() -> Any:
    from contextlib import ExitStack

    import psycopg

    from oxy.database import database_url
    from oxy.settings import load_settings

    stack = ExitStack()
    url = stack.enter_context(database_url(load_settings()))
    conn = stack.enter_context(psycopg.connect(url, autocommit=True))
    return stack, conn


@devices_app.command("add")
def devices_add(  # noqa: PLR0917 - typer options
    name: Annotated[str, typer.Argument(help="Gateway code (or service username).")],
    facility: Annotated[
        str | None, typer.Option(help="Facility code, to register a new gateway.")
    ] = None,
    kind: Annotated[str, typer.Option(help="gateway | ingest | bridge")] = "gateway",
    password_file: PasswordFileOpt = None,
    acl_file: AclFileOpt = None,
    broker_pid: PidOpt = None,
    broker_pid_file: PidFileOpt = None,
) -> None:
    """Issue MQTT credentials; prints the password once."""
    from api.devices import add_gateway, add_service

    stack, conn = _devices_conn()
    with stack:
        if kind == "gateway":
            password = add_gateway(conn, _actor(), name, facility)
        else:
            password = add_service(conn, _actor(), name, kind)
        synced = _sync_or_explain(conn, password_file, acl_file, broker_pid, broker_pid_file)
    # Always shown: the password exists only here (the database keeps a hash).
    typer.echo(f"username: {name}")
    typer.echo(f"password: {password}")
    if not synced:
        raise typer.Exit(1)


@devices_app.command("rotate")
def devices_rotate(
    name: str,
    password_file: PasswordFileOpt = None,
    acl_file: AclFileOpt = None,
    broker_pid: PidOpt = None,
    broker_pid_file: PidFileOpt = None,
) -> None:
    """Replace an account's password; prints the new one once."""
    from api.devices import rotate

    stack, conn = _devices_conn()
    with stack:
        password = rotate(conn, _actor(), name)
        synced = _sync_or_explain(conn, password_file, acl_file, broker_pid, broker_pid_file)
    typer.echo(f"password: {password}")
    if not synced:
        raise typer.Exit(1)


@devices_app.command("revoke")
def devices_revoke(
    name: str,
    password_file: PasswordFileOpt = None,
    acl_file: AclFileOpt = None,
    broker_pid: PidOpt = None,
    broker_pid_file: PidFileOpt = None,
) -> None:
    """Revoke an account; effective as soon as the broker reloads (SIGHUP)."""
    from api.devices import revoke

    stack, conn = _devices_conn()
    with stack:
        revoke(conn, _actor(), name)
        _sync_broker(conn, password_file, acl_file, broker_pid, broker_pid_file)
    typer.echo(f"{name} revoked")


@devices_app.command("render")
def devices_render(
    password_file: PasswordFileOpt = None,
    acl_file: AclFileOpt = None,
    broker_pid: PidOpt = None,
    broker_pid_file: PidFileOpt = None,
) -> None:
    """Rewrite the broker's password and ACL files from the database."""
    stack, conn = _devices_conn()
    with stack:
        _sync_broker(conn, password_file, acl_file, broker_pid, broker_pid_file)


@devices_app.command("export-emqx")
def devices_export_emqx(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to write emqx-users.csv and acl.conf.")
    ] = Path("deploy/scale/auth"),
    owner: Annotated[
        str | None,
        typer.Option(help="user[:group] or uid[:gid] EMQX reads them as (1000 in its image)."),
    ] = None,
) -> None:
    """Write the accounts and ACLs for EMQX 5 (built-in database bootstrap file, file
    authorizer), for the scale-out profile (docs/scaling.md)."""
    from api.devices_emqx import write_emqx_files

    stack, conn = _devices_conn()
    with stack:
        export = write_emqx_files(conn, directory, owner)
    typer.echo(f"wrote {directory}/emqx-users.csv and acl.conf ({export.exported} accounts)")
    for name, why in export.skipped:
        typer.echo(f"not exported: {name}: {why}", err=True)
    if export.skipped:
        raise typer.Exit(1)


@devices_app.command("list")
def devices_list() -> None:
    """List MQTT accounts and what each may do."""
    from api.devices import accounts, acl_lines

    stack, conn = _devices_conn()
    with stack:
        for a in accounts(conn):
            state = "active" if a.active else "revoked"
            rights = "; ".join(acl_lines(a)[1:]) if a.active else "-"
            typer.echo(f"{a.username:<28} {a.kind:<8} {state:<8} {rights}")
