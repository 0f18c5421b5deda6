"""firmware-bridge wire formats (issue 24): payload bytes per reading of the data messages the
bridge's outbox stores for one mapped gateway, contract v1 against v2 (plain, deflated), at 10
and 50 sensors read at one instant, with a point `resolution` of 0.01 and without (0: floats).

Run: `.venv/bin/python bench/bridge_wire.py` (no broker: the payloads as the bridge stores and
sends them; MQTT framing — about 2 + topic length + 2 bytes per message — not included).
Not load-dependent; a deflated size varies by a few bytes with the outbox's epoch (the time the
outbox was created, carried in every message).
"""

import sys
from datetime import UTC, datetime

sys.path[:0] = [".", "firmware-bridge"]

from firmware_bridge.outbox import BridgeOutbox, V2Schema  # noqa: E402

from oxy.contract import Reading, SensorDecl  # noqa: E402


def main() -> None:
    """Print one line per (sensors, resolution, format)."""
    t = datetime(2026, 12, 7, tzinfo=UTC)
    print("sensors  resolution  format       payload B  B/reading")
    for n in (10, 50):
        readings = [
            Reading(sensor=f"T{i}-dp", ts=t, value=100.0 + i * 0.37, unit="inH2O") for i in range(n)
        ]
        for res in (0.01, 0.0):
            decls = [SensorDecl(code=f"T{i}-dp", unit="inH2O", res=res) for i in range(n)]
            for name, v2 in (
                ("v1", None),
                ("v2", V2Schema.of(decls)),
                ("v2+deflate", V2Schema.of(decls, deflate=True)),
            ):
                box = BridgeOutbox(None)
                size = sum(len(body) for _key, body, _n in box.store("S", "gw-x", t, readings, v2))
                box.close()
                print(f"{n:7d}  {res:10g}  {name:11s}  {size:9d}  {size / n:9.1f}")


if __name__ == "__main__":
    main()
