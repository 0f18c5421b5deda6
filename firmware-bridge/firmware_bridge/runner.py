"""`oxy bridge run`: load the configuration, start the bridge (and its HTTP push), wait."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from firmware_bridge.config import BridgeConfig, load_config
from firmware_bridge.errors import BridgeError
from firmware_bridge.rejects import open_rejects
from firmware_bridge.service import Bridge
from oxy.logs import setup_logging
from oxy.settings import load_settings

logger = logging.getLogger(__name__)


def build_bridge(config: BridgeConfig, database_url: str = "") -> Bridge:
    """A bridge for `config`; rejects go to the config's database, else OXY_DATABASE_URL."""
    url = config.rejects.database_url or database_url or None
    sqlite_path = config.rejects.sqlite_path
    if url is None and sqlite_path is None:
        if config.state_dir is None:
            raise BridgeError(
                "bridge config: set rejects.database_url (or OXY_DATABASE_URL),"
                " rejects.sqlite_path or state_dir, so rejects are recorded somewhere"
            )
        sqlite_path = config.state_dir / "bridge-rejects.sqlite"
    return Bridge(config, open_rejects(url, sqlite_path))


def run_bridge(path: Path) -> None:
    """Run until SIGINT/SIGTERM."""
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_json)
    config = load_config(path)
    bridge = build_bridge(config, settings.database_url)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    bridge.start()
    server = None
    if config.http.enabled:
        import uvicorn

        from firmware_bridge.push import create_app

        server = uvicorn.Server(
            uvicorn.Config(
                create_app(bridge, config.http.timeout_s),
                host=config.http.host,
                port=config.http.port,
                log_level="warning",
            )
        )
        threading.Thread(target=server.run, name="bridge-http", daemon=True).start()
    logger.info(
        "bridge running: %d sources, http %s",
        len(config.sources),
        f"{config.http.host}:{config.http.port}" if server else "off",
    )
    stop.wait()
    logger.info("bridge stopping")
    if server is not None:
        server.should_exit = True
    bridge.stop()
