"""Device credentials on a real Mosquitto running the product's configuration: a gateway may
publish only under its own prefix, ingest reads everything, revocation and rotation take effect
on a broker reload (SIGHUP) without a restart."""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from api import devices
from oxy.contract import ack_topic, gateway_prefix, rebirth_topic
from tests.api.conftest import World

ROOT = Path(__file__).resolve().parents[2]


class Link:
    """A small synchronous MQTT v5 client for the tests."""

    def __init__(self, port: int, username: str | None, password: str | None) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.acks: dict[int, ReasonCode] = {}
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            protocol=mqtt.MQTTv5,
            client_id=f"t-{username}-{time.monotonic_ns()}",
        )
        if username is not None:
            self.c.username_pw_set(username, password)
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.c.on_publish = self._on_publish
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self.connack.put(rc)

    def _on_publish(self, c: Any, u: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        self.acks[mid] = rc

    def connected(self) -> bool:
        rc = self.connack.get(timeout=15)
        return not rc.is_failure

    def publish(self, topic: str) -> ReasonCode:
        info = self.c.publish(topic, b'{"v":1}', qos=1)
        deadline = time.monotonic() + 15
        while info.mid not in self.acks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> None:
        done: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.c.on_subscribe = lambda c, u, mid, rcs, p: done.put(rcs)
        self.c.subscribe(topic, qos=1)
        rcs = done.get(timeout=15)
        assert not rcs[0].is_failure, f"subscribe {topic} refused: {rcs[0]}"

    def received(self, timeout: float = 1.0) -> list[str]:
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                out.append(self.messages.get(timeout=0.05)[0])
            except queue.Empty:
                continue
        return out

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def files_dir() -> Iterator[Path]:
    """A folder the broker can read after dropping root privileges (pytest's tmp is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="oxy-acl-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def creds(world: World, files_dir: Path) -> dict[str, Any]:
    """Credentials for both test gateways and an ingest account, files rendered."""
    with psycopg.connect(world.db_url, autocommit=True) as conn:
        out = {
            "gw-bv-in": devices.add_gateway(conn, "test", "gw-bv-in"),
            "gw-bv-out": devices.add_gateway(conn, "test", "gw-bv-out"),
            "ingest-1": devices.add_service(conn, "test", "ingest-1", "ingest"),
        }
        devices.write_files(conn, files_dir / "passwd", files_dir / "acl")
    return out


def test_mosquitto_hash_round_trip() -> None:
    h = devices.mosquitto_hash("s3cret", salt=b"0123456789ab", iterations=101)
    assert h.startswith("$7$101$")
    assert devices.verify_mosquitto_hash(h, "s3cret")
    assert not devices.verify_mosquitto_hash(h, "other")


def test_gateway_publishes_only_under_its_own_prefix(
    world: World, creds: dict[str, str], files_dir: Path, broker_factory: Callable[..., Any]
) -> None:
    broker = broker_factory(password_file=files_dir / "passwd", acl_file=files_dir / "acl")
    ingest = Link(broker.port, "ingest-1", creds["ingest-1"])
    assert ingest.connected()
    ingest.subscribe("$share/oxy-ingest/oxy/v1/+/+/data")
    ingest.subscribe("oxy/v1/+/+/state")

    gw = Link(broker.port, "gw-bv-in", creds["gw-bv-in"])
    assert gw.connected()
    own = gateway_prefix("BV-IN", "gw-bv-in")
    other = gateway_prefix("BV-OUT", "gw-bv-out")
    assert not gw.publish(own + "data").is_failure
    assert not gw.publish(own + "state").is_failure
    # Another gateway's prefix, and a different site with our gateway name: not authorised.
    assert gw.publish(other + "data").value == 135
    assert gw.publish(gateway_prefix("BV-OUT", "gw-bv-in") + "data").value == 135
    got = ingest.received()
    assert sorted(got) == [own + "data", own + "state"]
    # A gateway cannot read other gateways' traffic either (Mosquitto filters on delivery).
    gw.subscribe("oxy/v1/#")
    neighbour = Link(broker.port, "gw-bv-out", creds["gw-bv-out"])
    assert neighbour.connected()
    assert not neighbour.publish(other + "data").is_failure
    assert ingest.received() == [other + "data"]
    assert gw.received(0.5) == []
    for link in (gw, neighbour, ingest):
        link.close()


def test_only_ingest_confirms_and_only_the_gateway_reads_its_watermark(
    world: World, creds: dict[str, str], files_dir: Path, broker_factory: Callable[..., Any]
) -> None:
    """The end-to-end acknowledgement topic: a gateway cannot confirm its own (or another's)
    readings, and reads only its own watermark."""
    broker = broker_factory(password_file=files_dir / "passwd", acl_file=files_dir / "acl")
    gw = Link(broker.port, "gw-bv-in", creds["gw-bv-in"])
    assert gw.connected()
    neighbour = Link(broker.port, "gw-bv-out", creds["gw-bv-out"])
    assert neighbour.connected()
    ingest = Link(broker.port, "ingest-1", creds["ingest-1"])
    assert ingest.connected()
    own, other = ack_topic("BV-IN", "gw-bv-in"), ack_topic("BV-OUT", "gw-bv-out")
    gw.subscribe(own)
    neighbour.subscribe("oxy/v1/#")
    assert not ingest.publish(own).is_failure
    assert gw.received() == [own]
    # 135: not authorised. Neither its own watermark nor another gateway's.
    assert gw.publish(own).value == 135
    assert gw.publish(other).value == 135
    assert neighbour.received(0.5) == []  # delivery of a foreign watermark is filtered
    # Ingest publishes watermarks only: it cannot forge data of a gateway.
    assert ingest.publish(gateway_prefix("BV-IN", "gw-bv-in") + "data").value == 135
    for link in (gw, neighbour, ingest):
        link.close()


def test_the_bridge_reads_watermarks_and_cannot_write_them(
    world: World, creds: dict[str, str], files_dir: Path, broker_factory: Callable[..., Any]
) -> None:
    """The firmware bridge speaks for gateways (data, state, status of any) and takes part in
    the end-to-end acknowledgement: it reads their watermarks, but cannot confirm readings."""
    with psycopg.connect(world.db_url, autocommit=True) as conn:
        secret = devices.add_service(conn, "test", "bridge-1", "bridge")
        devices.write_files(conn, files_dir / "passwd", files_dir / "acl")
    broker = broker_factory(password_file=files_dir / "passwd", acl_file=files_dir / "acl")
    bridge = Link(broker.port, "bridge-1", secret)
    assert bridge.connected()
    ingest = Link(broker.port, "ingest-1", creds["ingest-1"])
    assert ingest.connected()
    prefix, ack = gateway_prefix("BV-IN", "gw-bv-in"), ack_topic("BV-IN", "gw-bv-in")
    rebirth = rebirth_topic("BV-IN", "gw-bv-in")
    bridge.subscribe(ack)
    bridge.subscribe(rebirth)
    for kind in ("data", "data2", "state", "status"):
        assert not bridge.publish(prefix + kind).is_failure, kind
    assert not ingest.publish(ack).is_failure
    assert not ingest.publish(rebirth).is_failure
    assert sorted(bridge.received()) == sorted([ack, rebirth])
    assert bridge.publish(ack).value == 135  # not authorised: only ingest confirms
    assert bridge.publish(rebirth).value == 135  # only ingest asks for a birth
    assert bridge.publish("oxy/v1/BV-IN/gw-bv-in/other").value == 135
    for link in (bridge, ingest):
        link.close()


def test_wrong_password_and_anonymous_are_refused(
    creds: dict[str, str], files_dir: Path, broker_factory: Callable[..., Any]
) -> None:
    broker = broker_factory(password_file=files_dir / "passwd", acl_file=files_dir / "acl")
    assert not Link(broker.port, "gw-bv-in", "not-the-password").connected()
    assert not Link(broker.port, None, None).connected()
    assert not Link(broker.port, "gw-bv-in", creds["gw-bv-out"]).connected()


def test_revoke_and_rotate_take_effect_on_reload(
    world: World, creds: dict[str, str], files_dir: Path, broker_factory: Callable[..., Any]
) -> None:
    broker = broker_factory(password_file=files_dir / "passwd", acl_file=files_dir / "acl")
    ingest = Link(broker.port, "ingest-1", creds["ingest-1"])
    assert ingest.connected()
    ingest.subscribe("oxy/v1/#")
    live = Link(broker.port, "gw-bv-in", creds["gw-bv-in"])
    assert live.connected()
    other = Link(broker.port, "gw-bv-out", creds["gw-bv-out"])
    assert other.connected()

    with psycopg.connect(world.db_url, autocommit=True) as conn:
        devices.revoke(conn, "test", "gw-bv-in")
        new_out = devices.rotate(conn, "test", "gw-bv-out")
        devices.write_files(conn, files_dir / "passwd", files_dir / "acl")
        assert conn.execute(
            "SELECT revoked_at IS NOT NULL FROM gateways WHERE code = 'gw-bv-in'"
        ).fetchone() == (True,)
    devices.reload_broker(broker.proc.pid)
    time.sleep(0.5)

    # The revoked gateway can no longer connect, and its open connection publishes nothing.
    assert not Link(broker.port, "gw-bv-in", creds["gw-bv-in"]).connected()
    # Its still-open connection is either closed by the broker or refused on publish.
    if live.c.is_connected():
        rc = live.publish(gateway_prefix("BV-IN", "gw-bv-in") + "data")
        print("revoked live connection publish:", rc)
        assert rc.is_failure
    else:
        print("revoked live connection was closed by the broker")
    # Rotation: the old password is refused, the new one works; the rest of the broker went on.
    assert not Link(broker.port, "gw-bv-out", creds["gw-bv-out"]).connected()
    fresh = Link(broker.port, "gw-bv-out", new_out)
    assert fresh.connected()
    assert not fresh.publish(gateway_prefix("BV-OUT", "gw-bv-out") + "data").is_failure
    assert ingest.c.is_connected()
    assert ingest.received() == [gateway_prefix("BV-OUT", "gw-bv-out") + "data"]
    assert broker.proc.poll() is None  # the broker was reloaded, not restarted
    for link in (ingest, live, other, fresh):
        link.close()


def test_cli_writes_files_and_signals_the_broker(
    world: World,
    files_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    broker_factory: Callable[..., Any],
) -> None:
    from typer.testing import CliRunner

    from oxy.cli import _register_packages, app

    _register_packages()
    monkeypatch.setenv("OXY_DATABASE_URL", world.db_url)
    pw, acl = files_dir / "pw", files_dir / "acl"
    pw.write_text("")
    acl.write_text("")
    broker = broker_factory(password_file=pw, acl_file=acl)
    runner = CliRunner()
    args = [
        "--password-file",
        str(pw),
        "--acl-file",
        str(acl),
        "--broker-pid",
        str(broker.proc.pid),
    ]
    r = runner.invoke(app, ["devices", "add", "gw-new", "--facility", "BV-IN", *args])
    assert r.exit_code == 0, r.output
    password = r.output.split("password: ")[1].split()[0]
    assert "gw-new:$7$" in pw.read_text()
    assert f"topic write {gateway_prefix('BV-IN', 'gw-new')}data" in acl.read_text()
    assert f"topic read {ack_topic('BV-IN', 'gw-new')}" in acl.read_text()
    time.sleep(0.3)
    link = Link(broker.port, "gw-new", password)
    assert link.connected()
    assert not link.publish(gateway_prefix("BV-IN", "gw-new") + "status").is_failure
    link.close()
    r = runner.invoke(app, ["devices", "revoke", "gw-new", *args])
    assert r.exit_code == 0, r.output
    time.sleep(0.3)
    assert not Link(broker.port, "gw-new", password).connected()
    r = runner.invoke(app, ["devices", "list"])
    assert "gw-new" in r.output and "revoked" in r.output


def test_add_prints_the_password_even_when_the_reload_fails(
    world: World, files_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from oxy.cli import _register_packages, app

    _register_packages()
    monkeypatch.setenv("OXY_DATABASE_URL", world.db_url)
    monkeypatch.setenv("OXY_MQTT_BROKER_PID_FILE", str(files_dir / "missing.pid"))
    pw, acl = files_dir / "pw", files_dir / "acl"
    args = ["--password-file", str(pw), "--acl-file", str(acl)]
    r = CliRunner().invoke(app, ["devices", "add", "gw-late", "--facility", "BV-IN", *args])
    assert r.exit_code == 1, r.output
    password = r.output.split("password: ")[1].split()[0]
    assert len(password) >= 20
    assert "broker was not updated" in r.output and "kill -HUP" in r.output
    # The account exists and the files hold it: the reload alone is missing.
    assert devices.verify_mosquitto_hash(pw.read_text().split("gw-late:")[1].strip(), password)
    r = CliRunner().invoke(app, ["devices", "rotate", "gw-late", *args])
    assert r.exit_code == 1 and "password: " in r.output


def test_credential_files_are_not_world_readable(creds: dict[str, Any], files_dir: Path) -> None:
    import pwd
    import stat

    for name in ("passwd", "acl"):
        st = (files_dir / name).stat()
        assert stat.S_IMODE(st.st_mode) == 0o600, name
        if os.geteuid() == 0:  # as root, given to the user the broker drops to
            assert st.st_uid == pwd.getpwnam("mosquitto").pw_uid
    # In a setgid folder shared with the broker's group (the compose layout): 0640.
    shared = files_dir / "shared"
    shared.mkdir()
    shared.chmod(0o2750)
    assert devices.file_owner(shared).mode in (0o600, 0o640)
    if os.geteuid() != 0:
        assert devices.file_owner(shared).mode == 0o640


def test_shipped_broker_config_names_its_user_and_checks_the_data_folder(
    tmp_path: Path,
) -> None:
    from oxy.broker import BrokerConfig, persistence_problem, render

    assert "user mosquitto" in (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    cfg = BrokerConfig(data_dir=tmp_path / "data")
    assert "mkdir" in (persistence_problem(cfg) or "")
    (tmp_path / "data").mkdir(mode=0o700)
    if os.geteuid() == 0:  # a root-owned folder the broker (as mosquitto) cannot write
        problem = persistence_problem(cfg) or ""
        assert "chown -R mosquitto:" in problem
        os.chown(tmp_path / "data", pwd_uid("mosquitto"), -1)
    assert persistence_problem(cfg) is None
    assert render(cfg).splitlines()[2] == "user mosquitto"


def pwd_uid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid
