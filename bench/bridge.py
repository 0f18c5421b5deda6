"""firmware-bridge throughput: Sparkplug B DDATA (10 metrics each) through broker → bridge → broker.

Run: `.venv/bin/python bench/bridge.py [N]` (starts a private Mosquitto with the product config).
"""

import os
import sys
import tempfile
import time

sys.path[:0] = [".", "firmware-bridge"]
from pathlib import Path  # noqa: E402

from firmware_bridge.config import parse_config  # noqa: E402
from firmware_bridge.rejects import SqliteRejects  # noqa: E402
from firmware_bridge.service import Bridge  # noqa: E402

from oxy.broker import BrokerConfig  # noqa: E402
from tests.bridge import spb  # noqa: E402
from tests.bridge.conftest import Collector, Foreign  # noqa: E402
from tests.fix_mqtt import Broker, free_port, mosquitto_binary  # noqa: E402

work = Path(tempfile.mkdtemp())
(work / "data").mkdir()
os.chmod(work, 0o777)
os.chmod(work / "data", 0o777)
b = Broker(mosquitto_binary(), work, BrokerConfig(port=free_port(), data_dir=work / "data"))
b.start()
N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
src = {
    "name": "plant",
    "protocol": "sparkplug",
    "devices": [
        {
            "id": "G/E/D",
            "site": "S",
            "gateway": "gw-s",
            "points": [
                {"metric": f"m{i}", "sensor": f"T{i}-dp", "unit": "inH2O"} for i in range(10)
            ],
        }
    ],
}
br = Bridge(
    parse_config({"onward": {"mqtt_url": b.url}, "sources": [src]}),
    SqliteRejects(work / "r.sqlite"),
)
br.start()
assert br.wait_ready(10)
out = Collector(b.port, "oxy/v1/+/+/data")
dev = Foreign(b.port)
dev.send("spBv1.0/G/NBIRTH/E", spb.payload(0, [spb.metric("bdSeq", None, 4, 0)]))
dev.send(
    "spBv1.0/G/DBIRTH/E/D", spb.payload(1, [spb.metric(f"m{i}", i, 9, 1.0) for i in range(10)])
)
out.wait(lambda t, p: True)
payloads = [
    spb.payload(
        (2 + k) % 256,
        [spb.metric(None, i, 9, float(k), timestamp=1764300000000 + k * 1000) for i in range(10)],
    )
    for k in range(N)
]
t0 = time.perf_counter()
for p in payloads:
    dev.client.publish("spBv1.0/G/DDATA/E/D", p, qos=1)
out.wait(lambda t, p: True, count=N + 1, timeout=300)
dt = time.perf_counter() - t0
print(
    f"{N} DDATA messages x 10 metrics through the bridge in {dt:.2f}s: "
    f"{N / dt:.0f} msg/s, {10 * N / dt:.0f} readings/s; "
    f"gaps={br.sparkplug['plant'].gaps}"
)
br.stop()
out.close()
dev.close()
b.stop(kill=True)
