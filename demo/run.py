"""`oxy demo` / `make demo`: the whole platform on one machine with embedded defaults.

Database: OXY_DATABASE_URL, else the embedded PostgreSQL in the data directory. Broker:
OXY_MQTT_URL, else a private Mosquitto with the product's configuration when one is installed,
else the in-process MQTT 3.1.1 broker. Then the tank simulator, the gateways, one ingest worker
and the API/web UI run as child processes; Ctrl-C stops all of them.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from oxy import OxyError
from oxy.broker import BrokerConfig, render
from oxy.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class Child:
    """A supervised child process and its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path


def port_free(host: str, port: int) -> bool:
    """True if nothing listens on host:port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


class Supervisor:
    """Starts children with a shared environment, stops them all on exit or on first failure."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.logdir = workdir / "logs"
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.children: list[Child] = []

    def start(self, name: str, args: list[str]) -> Child:
        """Start `args` as child `name`, logging to logs/<name>.log."""
        log = self.logdir / f"{name}.log"
        with open(log, "ab") as fh:
            proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=self.env)
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def oxy(self, name: str, *args: str) -> Child:
        """Start an `oxy` subcommand as a child."""
        return self.start(name, [sys.executable, "-m", "oxy", *args])

    def failed(self) -> Child | None:
        """The first child that has exited, if any."""
        return next((c for c in self.children if c.proc.poll() is not None), None)

    def stop(self) -> None:
        """SIGTERM every child (newest first), then SIGKILL what is left after 10 s."""
        for c in reversed(self.children):
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for c in reversed(self.children):
            try:
                c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.proc.kill()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _start_broker(settings: Settings, workdir: Path, sup: Supervisor) -> str:
    if settings.mqtt_url:
        return settings.mqtt_url
    port = _free_port()
    mosquitto = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if mosquitto:
        data = workdir / "mosquitto"
        data.mkdir(parents=True, exist_ok=True)
        # Run as root, Mosquitto drops to its own user, which must write its persistence file.
        os.chmod(data, 0o777)  # noqa: S103
        conf = workdir / "mosquitto.conf"
        conf.write_text(render(BrokerConfig(port=port, data_dir=data)))
        sup.start("mosquitto", [mosquitto, "-c", str(conf)])
        kind = "Mosquitto (product configuration)"
    else:
        sup.start("broker", [sys.executable, "-m", "oxy.embedded_broker", str(port)])
        kind = "in-process MQTT 3.1.1 broker"
    if not _wait_port(port, 15):
        raise OxyError(f"the demo MQTT broker did not start on port {port}")
    print(f"  broker:   {kind} on 127.0.0.1:{port}")
    return f"mqtt://127.0.0.1:{port}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(settings: Settings) -> None:
    """Run everything until Ctrl-C."""
    from oxy.database import database_url
    from oxy.demo_seed import seed_demo
    from oxy.logs import setup_logging
    from oxy.migrate import migrate

    setup_logging("WARNING")
    # `kill`, a closed terminal or a service manager stop the demo like Ctrl-C does, so the
    # children and the embedded PostgreSQL are shut down cleanly.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    if not port_free(settings.api_host, settings.api_port):
        raise OxyError(
            f"port {settings.api_port} on {settings.api_host} is busy: stop what uses it "
            "or set OXY_API_PORT to another port"
        )
    workdir = settings.data_dir / "demo"
    workdir.mkdir(parents=True, exist_ok=True)
    print("oxy demo: starting the platform / đang khởi động nền tảng …")
    with database_url(settings) as db_url:
        migrate(db_url)
        summary = seed_demo(db_url)
        print(f"  database: {'embedded PostgreSQL' if not settings.database_url else 'configured'}")
        print(f"  {summary}")
        logins = _seed_accounts(db_url, workdir)
        from demo.history import backfill_history

        if backfill_history(db_url):
            print("  history:  8 days of simulated tank readings written")
        env = dict(os.environ, OXY_DATABASE_URL=db_url, PYTHONUNBUFFERED="1")
        sup = Supervisor(workdir, env)
        try:
            mqtt_url = _start_broker(settings, workdir, sup)
            env["OXY_MQTT_URL"] = mqtt_url
            _start_components(sup, workdir, mqtt_url)
            url = f"http://{settings.api_host}:{settings.api_port}"
            if not _wait_port(settings.api_port, 60):
                bad = sup.failed()
                raise OxyError(
                    "the API did not start"
                    + (f"; {bad.name} log:\n{_tail(bad.log)}" if bad else "")
                )
            _banner(url, logins, workdir)
            while True:
                bad = sup.failed()
                if bad is not None:
                    raise OxyError(
                        f"{bad.name} stopped (exit {bad.proc.returncode}); its log "
                        f"{bad.log}:\n{_tail(bad.log)}"
                    )
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("\noxy demo: stopping / đang dừng …")
        finally:
            sup.stop()


def _start_components(sup: Supervisor, workdir: Path, mqtt_url: str) -> None:
    from gateway.demo import build_demo
    from oxy.demo_seed import FACILITIES

    plan = build_demo(FACILITIES, workdir, mqtt_url)
    sup.oxy("simulator", "sim", "run", "--config", str(plan.sim_config))
    sup.oxy("ingest", "ingest", "run")
    gw_args: list[str] = []
    for cfg in plan.gateway_configs:
        gw_args += ["--config", str(cfg)]
    sup.oxy("gateways", "gateway", "run", *gw_args)
    sup.oxy("api", "api", "run")
    sup.oxy("alerts", "alerts", "run")
    sup.oxy("coordination", "coordination", "sync")


def _seed_accounts(db_url: str, workdir: Path) -> list[tuple[str, str, str]]:
    from api.demo_accounts import seed_demo_accounts

    return seed_demo_accounts(db_url, workdir)


def _banner(url: str, logins: list[tuple[str, str, str]], workdir: Path) -> None:
    print()
    print(f"  Web UI / Giao diện:  {url}")
    print(f"  Health:              {url}/health")
    print(f"  Logs / Nhật ký:      {workdir / 'logs'}")
    if logins:
        print("  Demo logins / Tài khoản demo (user / password / role):")
        for user, password, role in logins:
            print(f"    {user:<18} {password:<16} {role}")
    print("  Ctrl-C stops everything / Ctrl-C để dừng.")
    sys.stdout.flush()
