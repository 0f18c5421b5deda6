"""In-process MQTT 3.1.1 broker (amqtt) for `make demo` on machines without Mosquitto.

It has no shared subscriptions and no session expiry, so the demo runs one ingest worker
(shared DOMAIN.md). Run as `python -m oxy.embedded_broker PORT`.
"""

from __future__ import annotations

import asyncio
import logging
import sys

logger = logging.getLogger(__name__)


async def serve(port: int, bind: str = "127.0.0.1") -> None:
    """Run the broker until cancelled."""
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{bind}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    logger.info("embedded MQTT broker listening on %s:%d", bind, port)
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()


def main() -> None:
    """Entry point for `python -m oxy.embedded_broker PORT`."""
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
