"""A Sparkplug B edge node built on a third-party library (pysparkplug, from PyPI), run in its own
process by tests/bridge/test_sparkplug_thirdparty.py.

pysparkplug pins paho-mqtt<2 while the platform needs paho 2.x, so this script runs with
`.venv/thirdparty/spb-edge` first on its path (see the `spb_edge` fixture). It encodes every
payload with pysparkplug's own protobuf classes: births with datatypes, data messages WITHOUT
them (as the specification recommends, tck-id-payloads-metric-datatype-not-req) and with aliases
only. Behaviour, as a real node's:

- Will = NDEATH with the bdSeq of the connection; NBIRTH (seq 0, bdSeq, Node Control/Rebirth)
  then DBIRTH on connect, unless it waits for a primary host;
- `Node Control/Rebirth` NCMD → NBIRTH + DBIRTH again (same bdSeq, seq from 0), unless told to
  ignore rebirth requests;
- primary-host aware (`primary_host`): births only when `spBv1.0/STATE/<host>` says online
  (with a timestamp not older than the last one seen); when it says offline, the node stops
  publishing, keeps new values (store and forward) and sends them as historical metrics after
  the next births.

Driven by JSON lines on stdin: {"op": "connect", "primary_host": ..., "ignore_rebirth": ...},
{"op": "ddata", "values": {"Level/DP": -2000, ...}, "ts": ms}, {"op": "ndata", ...},
{"op": "quit"} (clean: NDEATH then DISCONNECT). Reports JSON lines on stdout: {"ev": ...}.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import pysparkplug as spb  # the third-party library, from .venv/thirdparty/spb-edge

GROUP, EDGE, DEVICE = "Plant", "Edge1", "Tank1"
NODE_METRICS = {"Line/Pressure": (1, spb.DataType.DOUBLE, 4.25)}
DEVICE_METRICS = {
    "Level/DP": (10, spb.DataType.INT64, -1000),
    "Temp": (11, spb.DataType.INT8, 20),
    "Counter": (12, spb.DataType.UINT32, 0),
}


_OUT = threading.Lock()  # events come from the main thread and from paho's network thread


def say(**event: Any) -> None:
    with _OUT:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


class Node:
    def __init__(self, port: int, bd_seq: int) -> None:
        self.port = port
        self.bd_seq = bd_seq
        self.seq = 0
        self.lock = threading.RLock()
        self.primary_host: str | None = None
        self.ignore_rebirth = False
        self.host_online = False
        self.host_ts = 0
        self.in_session = False
        self.stored: list[tuple[str, dict[str, Any], int]] = []  # (kind, values, ts)
        self.node_values = {k: v[2] for k, v in NODE_METRICS.items()}
        self.device_values = {k: v[2] for k, v in DEVICE_METRICS.items()}
        self.client = spb.Client(client_id=f"edge-{EDGE}-{port}")

    # -- wire ------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        seq = self.seq
        self.seq = (self.seq + 1) % 256
        return seq

    def _topic(self, kind: spb.MessageType, device: str | None = None) -> spb.Topic:
        return spb.Topic(message_type=kind, group_id=GROUP, edge_node_id=EDGE, device_id=device)

    def _publish(self, topic: spb.Topic, payload: Any, typed: bool, qos: Any = None) -> None:
        msg = spb.Message(
            topic=topic, payload=payload, qos=qos or spb.QoS.AT_MOST_ONCE, retain=False
        )
        self.client.publish(msg, include_dtypes=typed)

    def _bd_metric(self) -> spb.Metric:
        return spb.Metric(
            timestamp=spb.get_current_timestamp(),
            name="bdSeq",
            datatype=spb.DataType.INT64,
            value=self.bd_seq,
        )

    def births(self) -> None:
        with self.lock:
            now = spb.get_current_timestamp()
            self.seq = 0
            node = [
                self._bd_metric(),
                spb.Metric(now, "Node Control/Rebirth", spb.DataType.BOOLEAN, value=False),
            ] + [
                spb.Metric(now, name, dt, value=self.node_values[name], alias=alias)
                for name, (alias, dt, _) in NODE_METRICS.items()
            ]
            self._publish(
                self._topic(spb.MessageType.NBIRTH),
                spb.NBirth(timestamp=now, seq=self._next_seq(), metrics=tuple(node)),
                typed=True,
            )
            device = [
                spb.Metric(now, name, dt, value=self.device_values[name], alias=alias)
                for name, (alias, dt, _) in DEVICE_METRICS.items()
            ]
            self._publish(
                self._topic(spb.MessageType.DBIRTH, DEVICE),
                spb.DBirth(timestamp=now, seq=self._next_seq(), metrics=tuple(device)),
                typed=True,
            )
            self.in_session = True
            say(ev="born", bd_seq=self.bd_seq)
            stored, self.stored = self.stored, []
            for kind, values, ts in stored:
                self._data(kind, values, ts, historical=True)
            if stored:
                say(ev="forwarded", count=len(stored))

    def _data(self, kind: str, values: dict[str, Any], ts: int, historical: bool = False) -> None:
        table = NODE_METRICS if kind == "ndata" else DEVICE_METRICS
        metrics = tuple(
            spb.Metric(
                timestamp=ts,
                name=None,  # alias only (tck-id-payloads-alias-data-cmd-requirement)
                datatype=table[name][1],
                value=value,
                alias=table[name][0],
                is_historical=historical,
            )
            for name, value in values.items()
        )
        if kind == "ndata":
            topic, payload = (
                self._topic(spb.MessageType.NDATA),
                spb.NData(timestamp=ts, seq=self._next_seq(), metrics=metrics),
            )
        else:
            topic, payload = (
                self._topic(spb.MessageType.DDATA, DEVICE),
                spb.DData(timestamp=ts, seq=self._next_seq(), metrics=metrics),
            )
        self._publish(topic, payload, typed=False)  # no datatypes in data messages

    def data(self, kind: str, values: dict[str, Any], ts: int | None) -> None:
        with self.lock:
            stamp = ts or spb.get_current_timestamp()
            (self.node_values if kind == "ndata" else self.device_values).update(values)
            if self.in_session:
                self._data(kind, values, stamp)
                say(ev="sent", kind=kind)
            else:
                self.stored.append((kind, values, stamp))  # store and forward
                say(ev="stored", kind=kind)

    # -- session ---------------------------------------------------------------------------
    def connect(self, primary_host: str | None, ignore_rebirth: bool) -> None:
        self.primary_host = primary_host
        self.ignore_rebirth = ignore_rebirth
        will = spb.NDeath(timestamp=spb.get_current_timestamp(), bd_seq_metric=self._bd_metric())
        self.client.set_will(
            spb.Message(
                topic=self._topic(spb.MessageType.NDEATH),
                payload=will,
                qos=spb.QoS.AT_LEAST_ONCE,
                retain=False,
            )
        )
        self.client.subscribe(
            self._topic(spb.MessageType.NCMD), spb.QoS.AT_LEAST_ONCE, self.on_ncmd
        )
        if primary_host:
            state = spb.Topic(message_type=spb.MessageType.STATE, sparkplug_host_id=primary_host)
            self.client.subscribe(state, spb.QoS.AT_LEAST_ONCE, self.on_state)

        def connected(_client: Any) -> None:
            say(ev="connected")
            if not self.primary_host:
                self.births()

        self.client.connect("127.0.0.1", port=self.port, callback=connected)

    def on_ncmd(self, _client: Any, message: Any) -> None:
        for metric in message.payload.metrics:
            if metric.name == "Node Control/Rebirth" and metric.value:
                say(ev="rebirth_requested")
                if not self.ignore_rebirth:
                    self.births()

    def on_state(self, _client: Any, message: Any) -> None:
        state = message.payload
        with self.lock:
            if state.timestamp < self.host_ts:
                return  # an older STATE than the last one seen (tck-id-...-phid-wait-timestamp)
            self.host_ts = state.timestamp
            was = self.host_online
            self.host_online = bool(state.online)
            say(ev="host", online=self.host_online)
            if self.host_online and not was:
                self.births()
            elif not self.host_online and self.in_session:
                # The primary host went away: stop publishing, keep values until it is back.
                self.in_session = False

    def quit(self) -> None:
        death = spb.NDeath(timestamp=spb.get_current_timestamp(), bd_seq_metric=self._bd_metric())
        self._publish(
            self._topic(spb.MessageType.NDEATH), death, typed=True, qos=spb.QoS.AT_LEAST_ONCE
        )
        self.client.disconnect()


def main() -> None:
    node = Node(int(sys.argv[1]), int(sys.argv[2]))
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "connect":
            node.connect(cmd.get("primary_host"), bool(cmd.get("ignore_rebirth")))
        elif op in ("ddata", "ndata"):
            node.data(op, cmd["values"], cmd.get("ts"))
        elif op == "quit":
            node.quit()
            say(ev="bye")
            return
        say(ev="ok", op=op)


if __name__ == "__main__":
    main()
