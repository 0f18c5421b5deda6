"""Simulator configuration (TOML): speed, seed, tanks and scheduled faults."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from gateway.config import ConfigError
from gateway.sim.model import TankSpec

FAULT_KINDS = ("stuck", "out_of_range", "unreachable", "exception")


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A fault switched on `at_s` wall seconds after start, for `duration_s` (0 = for ever)."""

    tank: str
    kind: str
    at_s: float = 0.0
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class SimConfig:
    """The whole simulator."""

    tanks: tuple[TankSpec, ...]
    speed: float = 1.0
    seed: int = 1
    update_interval_s: float = 0.5
    faults: tuple[FaultSpec, ...] = ()
    control_file: Path | None = None


def _build(cls: Any, data: dict[str, Any], where: str) -> Any:
    names = {f.name for f in fields(cls)}
    extra = sorted(set(data) - names)
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def parse(text: str, source: Path | None = None) -> SimConfig:
    """Parse simulator TOML."""
    where = str(source) if source else "sim config"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    sim = dict(data.pop("sim", {}))
    tanks = tuple(_build(TankSpec, t, f"tanks[{i}]") for i, t in enumerate(data.pop("tanks", [])))
    faults = tuple(
        _build(FaultSpec, f, f"faults[{i}]") for i, f in enumerate(data.pop("faults", []))
    )
    if data:
        raise ConfigError(f"{where}: unknown table(s) {', '.join(sorted(data))}")
    if not tanks:
        raise ConfigError(f"{where}: no [[tanks]]")
    codes = [t.code for t in tanks]
    if len(set(codes)) != len(codes):
        raise ConfigError(f"{where}: tank codes must be unique")
    for f in faults:
        if f.tank not in codes or f.kind not in FAULT_KINDS:
            raise ConfigError(
                f"{where}: fault {f} names an unknown tank or kind ({', '.join(FAULT_KINDS)})"
            )
    control = sim.pop("control_file", None)
    base = source.parent if source else Path.cwd()
    cfg = _build(SimConfig, {**sim, "tanks": tanks, "faults": faults}, "sim")
    if control:
        cfg = SimConfig(
            cfg.tanks, cfg.speed, cfg.seed, cfg.update_interval_s, cfg.faults, base / control
        )
    if cfg.speed <= 0:
        raise ConfigError("sim.speed must be positive")
    return cfg  # type: ignore[no-any-return]


def load(path: Path) -> SimConfig:
    """Read a simulator configuration file."""
    try:
        return parse(path.read_text(encoding="utf-8"), path.resolve())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
