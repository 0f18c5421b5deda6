"""Device identity on the broker: per-gateway MQTT credentials and ACLs rendered for Mosquitto.

Each gateway gets its own username (its gateway code) and may publish only under
`oxy/v1/<site>/<gateway>/` (oxy.contract.gateway_prefix); ingest accounts may read every platform
topic; bridge accounts publish for foreign devices. Only Mosquitto's PBKDF2-SHA512 hash of a
password is kept (table `mqtt_accounts`); the password file and the ACL file are always
rendered whole from that table, so they can be regenerated anywhere. Mosquitto re-reads both on
SIGHUP: revocation takes effect without restarting the broker or dropping other clients.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import logging
import os
import pwd
import secrets
import signal
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.audit import audit_sync
from oxy import OxyError
from oxy.broker import BROKER_LOG_TOPIC
from oxy.contract import (
    ACK_SUFFIX,
    CODE_RE,
    REBIRTH_SUFFIX,
    TOPIC_ROOT,
    TopicKind,
    ack_topic,
    gateway_prefix,
    rebirth_topic,
)

logger = logging.getLogger(__name__)

# Mosquitto 2 password-file hash: "$7$<iterations>$<b64 salt>$<b64 PBKDF2-HMAC-SHA512>".
PBKDF2_ITERATIONS = 10_000
SALT_BYTES = 12
KINDS = ("gateway", "ingest", "bridge")


class DeviceError(OxyError):
    """A device-credential operation was refused."""


def mosquitto_hash(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """The `$7$` PBKDF2-SHA512 hash Mosquitto 2 accepts in its password file."""
    # The salt is text, 12 URL-safe characters (72 random bits; Mosquitto reads only a 12-byte
    # salt): the same hash then serves EMQX, whose PBKDF2 takes the salt as the text of its
    # user file (api.devices_emqx).
    salt = salt if salt is not None else secrets.token_urlsafe(SALT_BYTES * 3 // 4).encode()
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mosquitto_hash(stored: str, password: str) -> bool:
    """Whether `password` matches a `$7$` hash (used by tests and `devices list --check`)."""
    try:
        _, seven, iters, salt_b64, hash_b64 = stored.split("$")
    except ValueError:
        return False
    if seven != "7":
        return False
    salt = base64.b64decode(salt_b64)
    expected = base64.b64decode(hash_b64)
    got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(iters), dklen=len(expected))
    return secrets.compare_digest(got, expected)


def new_password() -> str:
    """A device password: 32 random URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class Account:
    """One MQTT account as stored."""

    username: str
    kind: str
    password_hash: str
    site: str | None
    gateway: str | None
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None


_ACCOUNTS = """
SELECT m.username, m.kind, m.password_hash, o.code AS site, g.code AS gateway,
       m.created_at, m.rotated_at, m.revoked_at
FROM mqtt_accounts m
LEFT JOIN gateways g ON g.id = m.gateway_id
LEFT JOIN organisations o ON o.id = g.facility_id
ORDER BY m.kind, m.username
"""


def accounts(conn: psycopg.Connection[Any]) -> list[Account]:
    """Every MQTT account, revoked ones included."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_ACCOUNTS)
        return [Account(**r) for r in cur.fetchall()]


def add_gateway(
    conn: psycopg.Connection[Any],
    actor: str,
    gateway_code: str,
    facility_code: str | None = None,
    name: str | None = None,
) -> str:
    """Create credentials for a gateway (registering it under `facility_code` if new); returns
    the password, which is shown once and never stored."""
    if not CODE_RE.match(gateway_code):
        raise DeviceError(f"invalid gateway code {gateway_code!r}")
    with conn.transaction():
        row = conn.execute(
            "SELECT g.id, g.facility_id, o.code FROM gateways g "
            "JOIN organisations o ON o.id = g.facility_id WHERE g.code = %(c)s",
            {"c": gateway_code},
        ).fetchone()
        if row is None:
            if not facility_code:
                raise DeviceError(
                    f"gateway {gateway_code} is not registered; give --facility <code>"
                )
            fac = conn.execute(
                "SELECT id FROM organisations WHERE code = %(c)s AND kind = 'facility'",
                {"c": facility_code},
            ).fetchone()
            if fac is None:
                raise DeviceError(f"no facility with code {facility_code}")
            row = conn.execute(
                "INSERT INTO gateways (facility_id, code, name) VALUES (%(f)s, %(c)s, %(n)s) "
                "RETURNING id, facility_id, %(fc)s::text",
                {"f": fac[0], "c": gateway_code, "n": name, "fc": facility_code},
            ).fetchone()
            assert row is not None
        elif facility_code and facility_code != row[2]:
            raise DeviceError(f"gateway {gateway_code} belongs to facility {row[2]}")
        gateway_id, facility_id, site = int(row[0]), int(row[1]), str(row[2])
        existing = conn.execute(
            "SELECT revoked_at FROM mqtt_accounts WHERE gateway_id = %(g)s", {"g": gateway_id}
        ).fetchone()
        password = new_password()
        if existing is not None and existing[0] is None:
            raise DeviceError(f"gateway {gateway_code} already has credentials; use rotate")
        if existing is not None:  # re-issue after a revocation
            conn.execute(
                "UPDATE mqtt_accounts SET password_hash = %(h)s, revoked_at = NULL, "
                "rotated_at = now() WHERE gateway_id = %(g)s",
                {"h": mosquitto_hash(password), "g": gateway_id},
            )
            conn.execute(
                "UPDATE gateways SET revoked_at = NULL WHERE id = %(g)s", {"g": gateway_id}
            )
        else:
            conn.execute(
                "INSERT INTO mqtt_accounts (username, kind, gateway_id, password_hash) "
                "VALUES (%(u)s, 'gateway', %(g)s, %(h)s)",
                {"u": gateway_code, "g": gateway_id, "h": mosquitto_hash(password)},
            )
        audit_sync(
            conn,
            actor,
            "add",
            "mqtt_account",
            gateway_code,
            None,
            {"kind": "gateway", "site": site, "prefix": gateway_prefix(site, gateway_code)},
            org_id=facility_id,
        )
    logger.info("credentials issued for gateway %s (site %s)", gateway_code, site)
    return password


def add_service(conn: psycopg.Connection[Any], actor: str, username: str, kind: str) -> str:
    """Create credentials for a service account (`ingest` or `bridge`); returns the password."""
    if kind not in ("ingest", "bridge"):
        raise DeviceError("service kind must be ingest or bridge")
    if not CODE_RE.match(username):
        raise DeviceError(f"invalid username {username!r}")
    password = new_password()
    with conn.transaction():
        row = conn.execute(
            "SELECT kind, revoked_at FROM mqtt_accounts WHERE username = %(u)s", {"u": username}
        ).fetchone()
        if row is not None and row[1] is None:
            raise DeviceError(f"{username} already has credentials; use rotate")
        if row is not None and row[0] != kind:
            raise DeviceError(f"{username} is a {row[0]} account")
        conn.execute(
            "INSERT INTO mqtt_accounts (username, kind, password_hash) "
            "VALUES (%(u)s, %(k)s, %(h)s) "
            "ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, "
            "revoked_at = NULL, rotated_at = now()",
            {"u": username, "k": kind, "h": mosquitto_hash(password)},
        )
        audit_sync(conn, actor, "add", "mqtt_account", username, None, {"kind": kind})
    logger.info("credentials issued for %s account %s", kind, username)
    return password


def rotate(conn: psycopg.Connection[Any], actor: str, username: str) -> str:
    """Replace an account's password; the old one stops working at the next broker reload."""
    password = new_password()
    with conn.transaction():
        row = conn.execute(
            "UPDATE mqtt_accounts SET password_hash = %(h)s, rotated_at = now() "
            "WHERE username = %(u)s AND revoked_at IS NULL RETURNING kind",
            {"h": mosquitto_hash(password), "u": username},
        ).fetchone()
        if row is None:
            raise DeviceError(f"no active MQTT account {username}")
        audit_sync(conn, actor, "rotate", "mqtt_account", username)
    logger.info("credentials rotated for %s", username)
    return password


def revoke(conn: psycopg.Connection[Any], actor: str, username: str) -> None:
    """Revoke an account (and mark its gateway revoked)."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE mqtt_accounts SET revoked_at = now() "
            "WHERE username = %(u)s AND revoked_at IS NULL RETURNING gateway_id",
            {"u": username},
        ).fetchone()
        if row is None:
            raise DeviceError(f"no active MQTT account {username}")
        org_id = None
        if row[0] is not None:
            g = conn.execute(
                "UPDATE gateways SET revoked_at = now() WHERE id = %(g)s RETURNING facility_id",
                {"g": row[0]},
            ).fetchone()
            org_id = int(g[0]) if g else None
        audit_sync(
            conn,
            actor,
            "revoke",
            "mqtt_account",
            username,
            {"active": True},
            {"active": False},
            org_id=org_id,
        )
    logger.info("credentials revoked for %s", username)


# --------------------------------------------------------------------------------------------
# Rendering the broker's files


def render_password_file(items: list[Account]) -> str:
    """The Mosquitto password file: active accounts only."""
    return "".join(f"{a.username}:{a.password_hash}\n" for a in items if a.active)


def acl_lines(a: Account) -> list[str]:
    """The ACL block for one active account."""
    lines = [f"user {a.username}"]
    if a.kind == "gateway" and a.site and a.gateway:
        # Its own topics only: data, state (incl. the Will) and status (readwrite so that it
        # can read back its own retained birth); the centre's watermark it may only read:
        # nobody but ingest can confirm a gateway's readings (end-to-end acknowledgement).
        prefix = gateway_prefix(a.site, a.gateway)
        lines += [
            f"topic write {prefix}{TopicKind.DATA.value}",
            f"topic write {prefix}{TopicKind.DATA_V2.value}",
            f"topic readwrite {prefix}{TopicKind.STATE.value}",
            f"topic readwrite {prefix}{TopicKind.STATUS.value}",
            f"topic read {ack_topic(a.site, a.gateway)}",
            f"topic read {rebirth_topic(a.site, a.gateway)}",
        ]
    elif a.kind == "ingest":
        lines.append(f"topic read {TOPIC_ROOT}/#")
        lines.append(f"topic write {TOPIC_ROOT}/+/+/{ACK_SUFFIX}")
        # The broker's notice log (oversize drops become a metric of ingest).
        lines.append(f"topic read {BROKER_LOG_TOPIC}")
        lines.append(f"topic write {TOPIC_ROOT}/+/+/{REBIRTH_SUFFIX}")
    elif a.kind == "bridge":
        # It speaks for the gateways its configuration maps (any of them: the account is not
        # tied to a list), so their data, state and status; it reads their watermarks (the
        # bridge's end-to-end acknowledgement) and ingest's rebirth requests (contract v2)
        # but, like a gateway, may never write either.
        lines += [
            f"topic write {TOPIC_ROOT}/+/+/{TopicKind.DATA.value}",
            f"topic write {TOPIC_ROOT}/+/+/{TopicKind.DATA_V2.value}",
            f"topic readwrite {TOPIC_ROOT}/+/+/{TopicKind.STATE.value}",
            f"topic readwrite {TOPIC_ROOT}/+/+/{TopicKind.STATUS.value}",
            f"topic read {TOPIC_ROOT}/+/+/{ACK_SUFFIX}",
            f"topic read {TOPIC_ROOT}/+/+/{REBIRTH_SUFFIX}",
            "topic read spBv1.0/#",
        ]
    return lines


def render_acl_file(items: list[Account]) -> str:
    """The Mosquitto ACL file: anonymous clients get nothing; each account its own block."""
    out = [
        "# Generated by `oxy devices` from table mqtt_accounts. Do not edit by hand.",
        "# No anonymous access: clients without a user below may neither read nor write.",
        "",
    ]
    for a in items:
        if a.active:
            out += [*acl_lines(a), ""]
    return "\n".join(out)


BROKER_USER = "mosquitto"  # whom Mosquitto runs as after dropping root (its `user` setting)


@dataclass(frozen=True, slots=True)
class FileOwner:
    """Who must be able to read the broker's credential files, and with which mode."""

    uid: int | None  # chown to this user (needs root); None: leave as written
    gid: int | None
    mode: int


def _resolve_owner(spec: str) -> tuple[int, int | None]:
    user, _, group = spec.partition(":")
    try:
        entry = pwd.getpwnam(user) if not user.isdigit() else None
    except KeyError:
        raise DeviceError(f"no such user {user!r} for the broker's files") from None
    uid = entry.pw_uid if entry else int(user)
    gid: int | None = entry.pw_gid if entry else None
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise DeviceError(f"no such group {group!r} for the broker's files") from None
    return uid, gid


def file_owner(
    directory: Path, owner: str | None = None, broker_user: str | None = BROKER_USER
) -> FileOwner:
    """How to write the password and ACL files in `directory`: never world-readable.

    * `owner` given (`user[:group]` or `uid[:gid]`, e.g. OXY_MQTT_FILE_OWNER): chowned to it, 0600;
    * run as root and a `broker_user` (`mosquitto`) exists: chowned to it, 0600 (the broker
      re-reads the files on SIGHUP after dropping root, as that user);
    * the folder is setgid (the compose layout: written by the api's uid, group of the broker):
      0640, the group inherited from the folder;
    * otherwise 0600 for the writing user (the broker runs as the same user).
    """
    if owner:
        uid, gid = _resolve_owner(owner)
        return FileOwner(uid, gid, 0o600)
    if os.geteuid() == 0 and broker_user is not None:
        try:
            entry = pwd.getpwnam(broker_user)
        except KeyError:
            entry = None
        if entry is not None:
            return FileOwner(entry.pw_uid, entry.pw_gid, 0o600)
    try:
        setgid = bool(directory.stat().st_mode & stat.S_ISGID)
    except FileNotFoundError:
        setgid = False
    return FileOwner(None, None, 0o640 if setgid else 0o600)


def _write_atomic(path: Path, text: str, owner: FileOwner) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if owner.uid is not None:
            try:
                os.chown(tmp, owner.uid, -1 if owner.gid is None else owner.gid)
            except PermissionError:
                raise DeviceError(
                    f"cannot give {path} to uid {owner.uid}: run as root, or leave the owner "
                    "unset and let the broker run as this user"
                ) from None
        os.chmod(tmp, owner.mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_files(
    conn: psycopg.Connection[Any], password_file: Path, acl_file: Path, owner: str | None = None
) -> int:
    """Render both files from the database (atomically); returns the number of active accounts.

    The files are never world-readable (see `file_owner`): the broker reads them as its own user
    (it re-reads them on SIGHUP after dropping root).
    """
    items = accounts(conn)
    _write_atomic(
        password_file, render_password_file(items), file_owner(password_file.parent, owner)
    )
    _write_atomic(acl_file, render_acl_file(items), file_owner(acl_file.parent, owner))
    return sum(1 for a in items if a.active)


def reload_broker(pid: int) -> None:
    """Ask Mosquitto to re-read its password and ACL files (SIGHUP)."""
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError as exc:
        raise DeviceError(f"no broker process {pid}; reload it by hand (kill -HUP)") from exc
    logger.info("broker %d asked to reload its credentials", pid)
