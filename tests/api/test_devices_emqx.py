"""The broker accounts and ACLs exported for EMQX 5 (api/devices_emqx.py; the scale-out profile).
No EMQX here: the files are checked against EMQX's documented formats, and each password is
checked the way EMQX's pbkdf2 authenticator checks it (hex of PBKDF2-HMAC(password, salt text)
with the profile's parameters), independently of the code under test."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from api import devices
from api.devices import Account
from api.devices_emqx import CSV_HEADER, EMQX_PBKDF2, render_emqx
from oxy.contract import ack_topic, gateway_prefix

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 7, tzinfo=UTC)
# One rule of EMQX's file authorizer as the export writes them (Erlang terms ending in a dot).
RULE = re.compile(
    r'\{allow, \{username, "(?P<user>[^"\\]+)"\}, (?P<action>publish|subscribe|all), '
    r'\["(?P<topic>[^"\\]+)"\]\}\.'
)


def _account(name: str, kind: str, password: str, revoked: bool = False) -> Account:
    site, gw = ("H-01", name) if kind == "gateway" else (None, None)
    return Account(name, kind, devices.mosquitto_hash(password), site, gw, NOW, None,
                   NOW if revoked else None)  # fmt: skip


def _emqx_check(row: dict[str, str], password: str) -> bool:
    """EMQX 5's check for password_hash_algorithm = pbkdf2 (emqx_passwd:hash/2)."""
    key = hashlib.pbkdf2_hmac(
        str(EMQX_PBKDF2["mac_fun"]), password.encode(), row["salt"].encode(),
        int(EMQX_PBKDF2["iterations"]), int(EMQX_PBKDF2["dk_length"]),
    )  # fmt: skip
    return key.hex() == row["password_hash"]


def test_users_file_is_emqx_bootstrap_csv_with_the_same_passwords() -> None:
    items = [
        _account("gw-a", "gateway", "pw-a"),
        _account("gw-b", "gateway", "pw-b"),
        _account("oxy-ingest", "ingest", "pw-i"),
        _account("gw-old", "gateway", "pw-old", revoked=True),
    ]
    out = render_emqx(items)
    assert out.users_csv.splitlines()[0] == CSV_HEADER == "user_id,password_hash,salt,is_superuser"
    rows = {r["user_id"]: r for r in csv.DictReader(io.StringIO(out.users_csv))}
    assert set(rows) == {"gw-a", "gw-b", "oxy-ingest"}  # the revoked account is not there
    assert out.exported == 3 and out.skipped == []
    for name, pw in (("gw-a", "pw-a"), ("gw-b", "pw-b"), ("oxy-ingest", "pw-i")):
        assert _emqx_check(rows[name], pw), name
        assert not _emqx_check(rows[name], pw + "x")
        assert rows[name]["is_superuser"] == "false"
    # The Mosquitto file still verifies the same passwords (one hash, both brokers).
    assert devices.verify_mosquitto_hash(items[0].password_hash, "pw-a")
    assert rows["gw-a"]["salt"] != rows["gw-b"]["salt"]


def test_a_binary_salt_cannot_be_exported_and_says_rotate() -> None:
    old = Account("gw-bin", "gateway", devices.mosquitto_hash("pw", salt=b"\x00\xff" * 6),
                  "H-01", "gw-bin", NOW, None, None)  # fmt: skip
    other = Account("gw-iter", "gateway", devices.mosquitto_hash("pw", iterations=101,
                    salt=b"textsalt1234"), "H-01", "gw-iter", NOW, None, None)  # fmt: skip
    out = render_emqx([old, other, _account("gw-new", "gateway", "pw")])
    assert out.exported == 1
    why = dict(out.skipped)
    assert set(why) == {"gw-bin", "gw-iter"}
    assert "rotate" in why["gw-bin"] and "101" in why["gw-iter"]
    assert "gw-bin" not in out.users_csv and '"gw-bin"' not in out.acl_conf


def test_acl_file_gives_each_account_its_mosquitto_rights_and_denies_the_rest() -> None:
    gw, ingest = _account("gw-a", "gateway", "p"), _account("oxy-ingest", "ingest", "p")
    out = render_emqx([gw, ingest, _account("gw-gone", "gateway", "p", revoked=True)])
    lines = [ln for ln in out.acl_conf.splitlines() if ln and not ln.startswith("%%")]
    assert lines[-1] == "{deny, all}."
    rules = [RULE.fullmatch(ln) for ln in lines[:-1]]
    assert all(rules), [ln for ln, m in zip(lines, rules, strict=False) if not m]
    got = {(m["user"], m["action"], m["topic"]) for m in rules if m}
    assert {u for u, _a, _t in got} == {"gw-a", "oxy-ingest"}
    prefix = gateway_prefix("H-01", "gw-a")
    mine = {(a, t) for u, a, t in got if u == "gw-a"}
    assert ("publish", f"{prefix}data") in mine
    assert ("subscribe", ack_topic("H-01", "gw-a")) in mine  # reads its watermark, never writes
    assert not any(a in ("publish", "all") and "ack" in t for a, t in mine)
    assert all(t.startswith(prefix) for _a, t in mine)  # nothing outside its own prefix
    # Ingest's $share subscription is authorized as its plain filter (EMQX), under oxy/v1/#.
    assert ("oxy-ingest", "subscribe", "oxy/v1/#") in got
    # One rule per Mosquitto ACL line, same topics.
    for a in (gw, ingest):
        topics = [ln.split(" ", 2)[2] for ln in devices.acl_lines(a)[1:]]
        assert sorted(topics) == sorted(t for u, _x, t in got if u == a.username)


def test_scale_profile_configures_emqx_for_the_export() -> None:
    scale = yaml.safe_load((ROOT / "docker-compose.scale.yml").read_text(encoding="utf-8"))
    env = scale["x-emqx-env"]
    alg = "EMQX_AUTHENTICATION__1__PASSWORD_HASH_ALGORITHM__"
    assert env[alg + "NAME"] == EMQX_PBKDF2["name"]
    assert env[alg + "MAC_FUN"] == EMQX_PBKDF2["mac_fun"]
    assert int(env[alg + "ITERATIONS"]) == EMQX_PBKDF2["iterations"]
    assert int(env[alg + "DK_LENGTH"]) == EMQX_PBKDF2["dk_length"]
    assert env["EMQX_AUTHENTICATION__1__BOOTSTRAP_TYPE"] == "hash"
    assert env["EMQX_AUTHENTICATION__1__BOOTSTRAP_FILE"] == "/opt/oxy-auth/emqx-users.csv"
    assert env["EMQX_AUTHORIZATION__SOURCES__1__TYPE"] == "file"
    assert env["EMQX_AUTHORIZATION__SOURCES__1__PATH"] == "/opt/oxy-auth/acl.conf"
    assert env["EMQX_AUTHORIZATION__NO_MATCH"] == "deny"


@pytest.mark.parametrize("name", ['we"ird', "back\\slash"])
def test_names_are_quoted_as_erlang_strings(name: str) -> None:
    out = render_emqx([Account(name, "ingest", devices.mosquitto_hash("p"), None, None, NOW,
                               None, None)])  # fmt: skip
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert f"{{username, {quoted}}}" in out.acl_conf
