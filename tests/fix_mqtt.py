"""Mosquitto fixtures: private brokers started with the product's own configuration
(oxy.broker), each on its own port and data directory, stoppable and restartable."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from oxy.broker import BrokerConfig, render

IN_CI = os.environ.get("CI") == "true"


# Ports handed to the tests' own servers (brokers, databases, APIs): a range per xdist worker,
# below the kernel's ephemeral range (32768-60999). A port from bind(0) is free only until the
# socket closes: another worker's server, or any outbound connection's local port, could take it
# before ours binds, and wait_port would then find the other one listening (a test talking to a
# broker another test owns, losing it when that test ends: seen as a SUBACK never arriving with
# two workers per core). Ports from this range are never ephemeral and never another worker's.
PORTS_PER_WORKER = 400
_PORT_BASE = 20000  # 32 blocks of 400 up to 32767: 0-7 for xdist workers, 8-31 for plain runs
_WORKER_BLOCKS = 8


def _block() -> int:
    """This process's block: its xdist worker's, or (no xdist: a pytest run of its own, maybe
    beside another one) one chosen by pid among the rest."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw3" under xdist
    digits = name.removeprefix("gw")
    if digits.isdigit():
        return int(digits) % _WORKER_BLOCKS
    return _WORKER_BLOCKS + os.getpid() % (32 - _WORKER_BLOCKS)


_next_port = 0


def free_port() -> int:
    """An unused TCP port on loopback, from this worker's own range, each call a new one."""
    global _next_port
    base = _PORT_BASE + _block() * PORTS_PER_WORKER
    for _ in range(PORTS_PER_WORKER):
        port = base + _next_port % PORTS_PER_WORKER
        _next_port += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # still held (a server of an earlier test in TIME_WAIT or alive)
            return port
    raise RuntimeError(f"no free port in {base}..{base + PORTS_PER_WORKER - 1}")


def wait_port(port: int, timeout: float = 10.0, up: bool = True) -> None:
    """Wait until loopback `port` accepts connections (or, with up=False, refuses them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not {'open' if up else 'close'} in {timeout}s")


@dataclass
class Broker:
    """A private Mosquitto process running the product's configuration."""

    binary: str
    workdir: Path
    config: BrokerConfig
    proc: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def port(self) -> int:
        """The plain MQTT port."""
        return self.config.port

    @property
    def url(self) -> str:
        """mqtt://127.0.0.1:<port>"""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart) the broker with the same data directory."""
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(render(self.config))
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log)
        wait_port(self.port)
        time.sleep(0.05)
        if self.proc.poll() is not None:  # the port answered, but not for this broker
            log_text = (self.workdir / "mosquitto.log").read_text(errors="replace")[-500:]
            raise RuntimeError(f"broker on {self.port} exited ({self.proc.returncode}): {log_text}")

    def stop(self, kill: bool = False) -> None:
        """Stop the broker (SIGTERM saves its persistence file; kill=True does not)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(timeout=15)
        self.proc = None
        wait_port(self.port, up=False)


def mosquitto_binary() -> str | None:
    """Path of mosquitto, or None."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


@pytest.fixture(scope="session")
def mosquitto_path() -> str:
    """The mosquitto binary; a failure under CI=true, a skip elsewhere."""
    path = mosquitto_binary()
    if path is None:
        msg = "mosquitto is not installed (Debian/Ubuntu: apt-get install mosquitto)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture
def broker_factory(mosquitto_path: str) -> Iterator[Callable[..., Broker]]:
    """Make private brokers: `broker_factory(password_file=..., acl_file=...)`."""
    made: list[Broker] = []

    def make(**overrides: object) -> Broker:
        work = Path(tempfile.mkdtemp(prefix="oxy-mqtt-"))
        (work / "data").mkdir()
        os.chmod(work, 0o777)
        os.chmod(work / "data", 0o777)
        cfg = BrokerConfig(port=free_port(), data_dir=work / "data", **overrides)  # type: ignore[arg-type]
        b = Broker(mosquitto_path, work, cfg)
        b.start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop(kill=True)
        shutil.rmtree(b.workdir, ignore_errors=True)


@pytest.fixture
def broker(broker_factory: Callable[..., Broker]) -> Broker:
    """One private broker for a test."""
    return broker_factory()
