"""Configs for `oxy demo`: one simulator for every site's tanks and one gateway config per site.

The lead's demo seeds the registry with :attr:`DemoConfigs.sensors` (same codes, tanks, quantities
and units) and with each tank's `vertical_tank_table(capacity_kg, diameter_m)`, which is the table
the simulator computes DP from, so the centre recovers the simulated contents.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from oxy.contract import CANONICAL_UNIT, Quantity

DP_PROFILE = "lox-dp-float32"
PRESSURE_PROFILE = "head-pressure-centibar"


@dataclass(frozen=True, slots=True)
class DemoTank:
    """A simulated tank of a demo site."""

    code: str
    capacity_kg: float
    diameter_m: float
    fill: float = 0.6
    daily_kg: float = 1000.0


@dataclass(frozen=True, slots=True)
class DemoSite:
    """A demo facility with its gateway and tanks."""

    facility: str
    gateway: str
    tanks: tuple[DemoTank, ...] | list[DemoTank]


@dataclass(frozen=True, slots=True)
class DemoSensor:
    """A sensor the registry must hold so that ingest accepts its readings."""

    site: str
    gateway: str
    code: str
    tank: str
    quantity: Quantity
    unit: str


@dataclass(frozen=True, slots=True)
class DemoConfigs:
    """What :func:`write_demo_configs` wrote."""

    sim_config: Path
    gateway_configs: list[Path]
    sensors: list[DemoSensor] = field(default_factory=list)
    sim_control_file: Path | None = None

    @property
    def simulator_config(self) -> Path:
        """Alias of `sim_config`."""
        return self.sim_config


class TankLike(Protocol):
    """What build_demo reads from a tank (oxy.demo_seed.DemoTank fits)."""

    @property
    def code(self) -> str: ...
    @property
    def capacity_kg(self) -> float: ...
    @property
    def diameter_m(self) -> float: ...
    @property
    def fill(self) -> float: ...
    @property
    def daily_kg(self) -> float: ...


class FacilityLike(Protocol):
    """What build_demo reads from a facility (oxy.demo_seed.DemoFacility fits)."""

    @property
    def code(self) -> str: ...
    @property
    def gateway_code(self) -> str: ...
    @property
    def tanks(self) -> Sequence[TankLike]: ...


def build_demo(
    facilities: Sequence[FacilityLike],
    work_dir: Path,
    mqtt_url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    speed: float = 1.0,
    poll_interval_s: float = 5.0,
) -> DemoConfigs:
    """`write_demo_configs` for the demo seed's facilities (gateway `gw-<code lower>`)."""
    sites = [
        DemoSite(
            f.code,
            f.gateway_code,
            tuple(
                DemoTank(t.code, t.capacity_kg, t.diameter_m, t.fill, t.daily_kg) for t in f.tanks
            ),
        )
        for f in facilities
    ]
    return write_demo_configs(
        sites,
        mqtt_url,
        work_dir,
        username=username,
        password=password,
        speed=speed,
        poll_interval_s=poll_interval_s,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _q(value: object) -> str:
    """A TOML value (JSON strings and numbers are valid TOML)."""
    return json.dumps(value)


_PROFILES = f"""
[profiles.{DP_PROFILE}]
# Differential-pressure level transmitter, IEEE-754 float in two registers, inH2O.
function = "holding"
type = "float32"
byte_order = "big"
word_order = "big"
unit = "inH2O"
valid_min = -2.0
valid_max = 2000.0
stale_after_s = 30

[profiles.{PRESSURE_PROFILE}]
# Head-pressure transmitter, unsigned 16-bit in hundredths of a bar; 0xFFFF means failed.
function = "holding"
type = "uint16"
scale = 0.01
unit = "bar"
valid_min = 0.0
valid_max = 25.0
invalid_raw = [65535]
stale_after_s = 60
"""


def write_demo_configs(
    sites: list[DemoSite],
    mqtt_url: str,
    work_dir: Path,
    *,
    username: str | None = None,
    password: str | None = None,
    speed: float = 1.0,
    poll_interval_s: float = 5.0,
    seed: int = 1,
) -> DemoConfigs:
    """Write the simulator config and one gateway config per site; return paths and sensors.

    `username`/`password` apply to every gateway (per-gateway credentials: call once per site).
    `speed` accelerates the simulated tanks (consumption, refills); readings keep wall-clock time.
    Simulator tank codes are `<facility>.<tank>` (for `oxy sim fault`); sensors keep `<tank>-dp`.
    """
    from gateway.sim.model import REG_DP, REG_PRESSURE

    work_dir.mkdir(parents=True, exist_ok=True)
    control = work_dir / "sim-faults.json"
    sim_lines = [
        "# LOX tank simulator for the demo (written by gateway.demo).",
        "[sim]",
        f"speed = {_q(float(speed))}",
        f"seed = {seed}",
        f"control_file = {_q(control.name)}",
        "",
    ]
    gateway_paths: list[Path] = []
    sensors: list[DemoSensor] = []
    for site in sites:
        lines = [
            f"# Gateway of {site.facility} (written by gateway.demo).",
            "[gateway]",
            f"site = {_q(site.facility)}",
            f"code = {_q(site.gateway)}",
            f"state_dir = {_q('state')}",
            "status_interval_s = 15",
            "",
            "[mqtt]",
            f"url = {_q(mqtt_url)}",
        ]
        if username:
            lines.append(f"username = {_q(username)}")
        if password:
            lines.append(f"password = {_q(password)}")
        lines += ["", "[outbox]", "max_age_h = 168", _PROFILES]
        for tank in site.tanks:
            port = _free_port()
            sim_lines += [
                "[[tanks]]",
                # Tank codes repeat between facilities (T1, T2 …): the simulator's are qualified.
                f"code = {_q(site.facility + '.' + tank.code)}",
                f"site = {_q(site.facility)}",
                'host = "127.0.0.1"',
                f"port = {port}",
                f"capacity_kg = {_q(float(tank.capacity_kg))}",
                f"diameter_m = {_q(float(tank.diameter_m))}",
                f"fill = {_q(float(tank.fill))}",
                f"daily_kg = {_q(float(tank.daily_kg))}",
                "",
            ]
            dp, p = f"{tank.code}-dp", f"{tank.code}-p"
            lines += [
                "[[devices]]",
                f"name = {_q('tank-' + tank.code)}",
                'transport = "tcp"',
                'host = "127.0.0.1"',
                f"port = {port}",
                "unit_id = 1",
                f"poll_interval_s = {_q(float(poll_interval_s))}",
                "sensors = [",
                f'  {{ code = {_q(dp)}, tank = {_q(tank.code)}, quantity = "dp", '
                f"profile = {_q(DP_PROFILE)}, address = {REG_DP} }},",
                f'  {{ code = {_q(p)}, tank = {_q(tank.code)}, quantity = "head_pressure", '
                f"profile = {_q(PRESSURE_PROFILE)}, address = {REG_PRESSURE} }},",
                "]",
                "",
            ]
            for code, quantity in ((dp, Quantity.DIFF_PRESSURE), (p, Quantity.HEAD_PRESSURE)):
                sensors.append(
                    DemoSensor(
                        site.facility,
                        site.gateway,
                        code,
                        tank.code,
                        quantity,
                        CANONICAL_UNIT[quantity],
                    )
                )
        path = work_dir / f"gateway-{quote(site.gateway, safe='')}.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        gateway_paths.append(path)
    sim_path = work_dir / "sim.toml"
    sim_path.write_text("\n".join(sim_lines) + "\n", encoding="utf-8")
    return DemoConfigs(sim_path, gateway_paths, sensors, control)
