"""Process entry points shared by `oxy gateway ...`, `oxy sim ...` and `python -m gateway ...`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from pathlib import Path

from oxy.logs import setup_logging


def _logging(level: str) -> None:
    setup_logging(level.upper(), json_lines=os.environ.get("OXY_LOG_JSON", "") in ("1", "true"))
    # pymodbus logs every failed request; the pollers log state transitions instead.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def run_gateway_command(paths: list[Path], log_level: str = "INFO") -> None:
    """Load site configs and run their gateways in this process until SIGTERM/SIGINT."""
    from gateway.config import ConfigError, load
    from gateway.service import run_gateways

    if not paths:
        raise ConfigError("give at least one --config FILE")
    configs = [load(p) for p in paths]
    _logging(log_level)
    asyncio.run(run_gateways(configs))


def status_command(paths: list[Path], json_out: bool = False) -> str:
    """Status text (or JSON) of each configured gateway, from its local outbox file."""
    from gateway.config import load
    from gateway.status import format_status, read_status

    statuses = [read_status(load(p)) for p in paths]
    if json_out:
        return json.dumps(statuses if len(statuses) > 1 else statuses[0], indent=2)
    return "\n".join(format_status(s) for s in statuses)


def run_sim_command(path: Path, log_level: str = "INFO") -> None:
    """Run the tank simulator until SIGTERM/SIGINT."""
    import signal

    from gateway.sim.config import load
    from gateway.sim.server import run_simulator

    cfg = load(path)
    _logging(log_level)

    async def main() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            if task is not None:
                loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await run_simulator(cfg)

    asyncio.run(main())


def sim_fault_command(path: Path, tank: str, kind: str, duration: float = 0.0) -> str:
    """Write a fault into the running simulator's control file."""
    from gateway.config import ConfigError
    from gateway.sim.config import FAULT_KINDS, load

    cfg = load(path)
    if cfg.control_file is None:
        raise ConfigError(f"{path}: set sim.control_file to control faults from the command line")
    if tank not in {t.code for t in cfg.tanks}:
        raise ConfigError(f"unknown tank {tank!r}")
    if kind != "none" and kind not in FAULT_KINDS:
        raise ConfigError(f"unknown fault {kind!r}: {', '.join(FAULT_KINDS)} or none")
    wanted = {}
    if cfg.control_file.exists():
        wanted = json.loads(cfg.control_file.read_text() or "{}")
    if kind == "none":
        wanted.pop(tank, None)
    else:
        wanted[tank] = {"kind": kind, "until": time.time() + duration if duration > 0 else None}
    tmp = cfg.control_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(wanted))
    tmp.replace(cfg.control_file)
    return f"tank {tank}: fault {kind}" + (f" for {duration:g}s" if duration > 0 else "")
