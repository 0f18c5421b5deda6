"""Fixtures for the gateway tests: a background event loop, in-process simulators, subscribers."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.sim.config import SimConfig
from gateway.sim.model import TankSpec
from gateway.sim.server import Simulator
from tests.fix_mqtt import free_port

T = TypeVar("T")
DP_AT_0 = 'profile = "dp", address = 0'
P_AT_2 = 'profile = "p", address = 2'


class LoopThread:
    """An asyncio loop on a thread, so sync tests can run servers and gateways beside them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(_cancel_all(), timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def bg() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


def tank(code: str = "T1", **kw: Any) -> TankSpec:
    """A tank spec on a free port."""
    base: dict[str, Any] = dict(
        code=code,
        capacity_kg=10000.0,
        diameter_m=2.2,
        fill=0.6,
        daily_kg=1500.0,
        port=free_port(),
        dp_noise=0.02,
    )
    base.update(kw)
    return TankSpec(**base)


@pytest.fixture
def sim_factory(bg: LoopThread) -> Iterator[Callable[..., Simulator]]:
    made: list[Simulator] = []

    def make(*tanks: TankSpec, speed: float = 1.0, **kw: Any) -> Simulator:
        cfg = SimConfig(tanks=tuple(tanks), speed=speed, update_interval_s=0.1, **kw)

        async def start() -> Simulator:
            s = Simulator(cfg)
            await s.start()
            return s

        s = bg.run(start())
        made.append(s)
        return s

    yield make
    for s in made:
        bg.run(s.stop())


@dataclass
class Subscriber:
    """An independent MQTT subscriber (persistent session, QoS 1) that records everything."""

    port: int
    topic: str = "oxy/#"
    client_id: str = "test-subscriber"
    username: str | None = None
    password: str | None = None
    protocol: int = mqtt.MQTTv5
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=self.protocol
        )
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(self.topic, qos=1)
        c.on_message = self._on_message
        c.reconnect_delay_set(0.2, 0.5)
        if self.username:
            c.username_pw_set(self.username, self.password)
        if self.protocol == mqtt.MQTTv5:
            props = mqtt.Properties(mqtt.PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            c.connect("127.0.0.1", self.port, keepalive=10, clean_start=False, properties=props)
        else:
            c.connect("127.0.0.1", self.port, keepalive=10)
        c.loop_start()
        self.client = c
        deadline = time.monotonic() + 10
        while not c.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/" + kind)]

    def readings(self) -> list[dict[str, Any]]:
        """Every reading of every data message, in arrival order."""
        return [r for m in self.of_kind("data") for r in m["readings"]]

    def wait_for(self, pred: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.05)
        raise AssertionError("condition not met in time")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def subscriber_factory() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(port: int, **kw: Any) -> Subscriber:
        s = Subscriber(port, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def gateway_toml(
    tmp: Path,
    tanks: list[TankSpec],
    mqtt_port: int,
    *,
    poll: float = 1.0,
    extra_mqtt: str = "",
    extra_outbox: str = "",
    code: str = "gw-test",
    stale_dp: float = 0.0,
) -> Path:
    """A gateway config for simulated tanks (the register map of gateway.sim.model)."""
    devices = []
    for t in tanks:
        devices.append(
            f"""
[[devices]]
name = "tank-{t.code}"
host = "{t.host}"
port = {t.port}
poll_interval_s = {poll}
timeout_s = 0.5
reconnect_max_s = 1.0
sensors = [
  {{ code = "{t.code}-dp", tank = "{t.code}", quantity = "dp", {DP_AT_0} }},
  {{ code = "{t.code}-p", tank = "{t.code}", quantity = "head_pressure", {P_AT_2} }},
]
"""
        )
    text = f"""
[gateway]
site = "SITE-1"
code = "{code}"
state_dir = "state"
status_interval_s = 2

[mqtt]
url = "mqtt://127.0.0.1:{mqtt_port}"
{extra_mqtt}

[outbox]
{extra_outbox}

[profiles.dp]
type = "float32"
unit = "inH2O"
valid_min = -2.0
valid_max = 2000.0
stale_after_s = {stale_dp}

[profiles.p]
type = "uint16"
scale = 0.01
unit = "bar"
valid_max = 25.0
invalid_raw = [65535]
""" + "".join(devices)
    path = tmp / f"{code}.toml"
    path.write_text(text)
    return path


class RunningGateway:
    """A gateway.service.Gateway running as a task on the background loop."""

    def __init__(self, bg: LoopThread, cfg: Any) -> None:
        from gateway.service import Gateway

        self.bg = bg
        self.gw = Gateway(cfg)

        async def start() -> asyncio.Task[None]:
            return asyncio.create_task(self.gw.run())

        self.task = bg.run(start())

    def stop(self) -> None:
        async def cancel() -> None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

        self.bg.run(cancel())
