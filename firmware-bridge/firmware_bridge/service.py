"""The bridge service: foreign subscriptions in, the wire contract out, acks only when safe.

For every foreign message: decode and map it (protocol handlers), record rejects (dead letters,
quarantine) durably, publish the resulting data/state/status messages to the platform broker at
QoS 1, and only when every one of them is handed on acknowledge the foreign message (paho
manual acks). Handed on: state and status messages at their PUBACK; data messages once they are
in the durable end-to-end outbox (firmware_bridge.outbox: kept until ingest's watermark covers
them), or at their PUBACK with `end_to_end_ack = false` or without `state_dir`. A message
that cannot be handled is dead-lettered with its reason and then acknowledged; an unexpected
error in a handler is treated the same way, so the bridge keeps running. If even the reject
record (or the outbox) cannot be written, the message stays unacknowledged and the foreign
broker redelivers it after a reconnect.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from firmware_bridge.config import BridgeConfig, Source
from firmware_bridge.connection import Endpoint, connect_async, make_client
from firmware_bridge.errors import PayloadError
from firmware_bridge.lorawan import handle_chirpstack, handle_tts
from firmware_bridge.mapping import handle_vendor, parse_json
from firmware_bridge.model import GatewayRef, Health, Outcome
from firmware_bridge.outbox import AckSender, BridgeOutbox, V2Schema
from firmware_bridge.publisher import Publisher, SeqStore
from firmware_bridge.rejects import RejectSink
from firmware_bridge.sparkplug import NAMESPACE as SPARKPLUG_NAMESPACE
from firmware_bridge.sparkplug import SparkplugHost
from oxy.contract import (
    ContractError,
    DeviceHealth,
    StateMessage,
    StatusMessage,
    TopicKind,
    ack_topic,
    decode_rebirth,
    encode,
    encode_data,
    rebirth_topic,
    topic,
)

logger = logging.getLogger(__name__)

Handler = Callable[[str, bytes], Outcome]
STATE_OFFLINE_TIMEOUT_S = 5.0


def merge_health(old: Health | None, new: Health) -> Health:
    """A device's health after one more event: what the event does not tell (a ChirpStack
    `status` has no RSSI, an `up` no battery level) is kept, and an older event (a late uplink,
    a redelivery) never moves `last_good_poll` back nor overrides what a newer one said."""
    if old is None:
        return new
    newer, older = (new, old) if new.ts >= old.ts else (old, new)
    return Health(
        device=new.device,
        ts=newer.ts,
        battery_pct=newer.battery_pct if newer.battery_pct is not None else older.battery_pct,
        rssi_dbm=newer.rssi_dbm if newer.rssi_dbm is not None else older.rssi_dbm,
        snr_db=newer.snr_db if newer.snr_db is not None else older.snr_db,
    )


def _says_online(payload: bytes) -> bool:
    try:
        doc = json.loads(payload)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("online") is True


def host_state_topic(host_id: str) -> str:
    """The Sparkplug 3.0 host application STATE topic."""
    return f"{SPARKPLUG_NAMESPACE}/STATE/{host_id}"


@dataclass
class Delivery:
    """What became of one foreign message (reported to HTTP clients and tests)."""

    published: int = 0  # platform messages confirmed (data, state, status)
    readings: int = 0  # readings inside the confirmed data messages
    refused: list[str] = field(default_factory=list)
    dead: str | None = None  # the reason, when (part of) the message was dead-lettered
    quarantined: int = 0

    @property
    def ok(self) -> bool:
        """True when everything mapped was handed on."""
        return not self.refused


DeliveryDone = Callable[[Delivery], None]


@dataclass
class SourceLink:
    """The state of one source's connection to its broker."""

    connected: bool = False
    since: datetime | None = None
    error: str | None = None


class _Countdown:
    """Calls `done` once after `n` publish confirmations (and the final `arm`)."""

    def __init__(self, delivery: Delivery, done: DeliveryDone, on_refused: Callable[[str], None]):
        self._lock = threading.Lock()
        self._left = 1  # the arm() token: no early completion while publishing is under way
        self._delivery = delivery
        self._done = done
        self._on_refused = on_refused

    def add(self) -> None:
        with self._lock:
            self._left += 1

    def confirm(self, accepted: bool, reason: str, what: str, readings: int = 0) -> None:
        if not accepted:
            self._delivery.refused.append(f"{what}: {reason}")
            self._on_refused(f"platform broker refused {what}: {reason}")
        else:
            with self._lock:
                self._delivery.published += 1
                self._delivery.readings += readings
        self._tick()

    def arm(self) -> None:
        self._tick()

    def _tick(self) -> None:
        with self._lock:
            self._left -= 1
            finished = self._left == 0
        if finished:
            self._done(self._delivery)


class Bridge:
    """All sources of a configuration, one onward publisher, one reject sink."""

    def __init__(self, config: BridgeConfig, rejects: RejectSink) -> None:
        self.config = config
        self.rejects = rejects
        onward = config.onward
        self.publisher = Publisher(
            Endpoint(
                onward.mqtt_url, onward.client_id, onward.mqtt_version,
                onward.username, onward.password,
            )
        )  # fmt: skip
        self.seq = SeqStore(config.state_dir)
        # End-to-end acknowledgement: data messages wait in the outbox until ingest's watermark
        # covers them (docs/bridge.md); the foreign message is acknowledged once they are there.
        self.outbox: BridgeOutbox | None = None
        self.sender: AckSender | None = None
        # Contract v2 (docs/bridge.md): per mapped gateway, the birth's declarations; the last
        # state published for it (online, bd_seq), which a rebirth repeats with the sensors.
        self.v2: dict[GatewayRef, V2Schema] = {}
        if onward.data_format == "v2":
            self.v2 = {
                GatewayRef(site, gw): V2Schema.of(decls, onward.deflate)
                for (site, gw), decls in config.declarations().items()
            }
        self._states: dict[GatewayRef, tuple[bool, int]] = {}
        # Gateways only Sparkplug sources map: their births follow the edge node's (NBIRTH).
        sparkplug = {
            GatewayRef(d.site, d.gateway)
            for s in config.sources
            if s.protocol == "sparkplug"
            for d in s.devices
        }
        others = {
            GatewayRef(d.site, d.gateway)
            for s in config.sources
            if s.protocol != "sparkplug"
            for d in s.devices
        }
        self._sparkplug_only = sparkplug - others
        self._states_lock = threading.Lock()
        self.rebirths = 0
        if onward.end_to_end_ack:
            path = config.state_dir / "bridge-outbox.sqlite" if config.state_dir else None
            if path is None:
                logger.warning(
                    "no state_dir: the end-to-end outbox is in memory and does not survive a"
                    " bridge restart"
                )
            self.outbox = BridgeOutbox(path, onward.outbox_max_messages)
            self.sender = AckSender(
                self.outbox,
                lambda t, body, done: self.publisher.publish(t, body, False, done),
                lambda: self.publisher.connected,
                timeout_s=onward.ack_timeout_s,
                timeout_max_s=onward.ack_timeout_max_s,
                on_published=self._published,
            )
            refs = {(d.site, d.gateway) for s in config.sources for d in s.devices}
            self.publisher.ack_topics = [ack_topic(site, gw) for site, gw in sorted(refs)]
            self.publisher.on_ack = self.sender.ack
            self.publisher.on_connected = self._on_connected
            if self.v2:
                self.publisher.rebirth_topics = [
                    rebirth_topic(site, gw) for site, gw in sorted(refs)
                ]
                self.publisher.on_rebirth = self._on_rebirth
        self._health: dict[GatewayRef, dict[str, Health]] = {}
        self._health_lock = threading.Lock()
        self._clients: dict[str, mqtt.Client] = {}
        self._subscribed: dict[str, threading.Event] = {}
        self.sparkplug: dict[str, SparkplugHost] = {}
        self._handlers: dict[str, Handler] = {s.name: self._handler(s) for s in config.sources}
        self.counters: dict[str, int] = {
            "messages": 0, "published": 0, "readings": 0, "dead_letters": 0, "quarantined": 0,
            "refused": 0, "errors": 0,
        }  # fmt: skip
        # Per MQTT source: is its broker reachable (shown in /healthz, logged on change).
        self.links: dict[str, SourceLink] = {}
        self._count_lock = threading.Lock()
        self._stopped = False
        self._rejects_ok = True

    def _handler(self, source: Source) -> Handler:
        if source.protocol == "sparkplug":
            host = self.sparkplug[source.name] = SparkplugHost(source)
            return host.handle
        if source.protocol == "chirpstack":
            return lambda t, p: handle_chirpstack(source, t, p)
        if source.protocol == "tts":
            return lambda t, p: handle_tts(source, t, p)
        return lambda t, p: handle_vendor(source, parse_json(p), t)

    def _count(self, key: str, n: int = 1) -> None:
        with self._count_lock:
            self.counters[key] += n

    def _published(self, readings: int) -> None:
        """A stored data message got its first PUBACK (end-to-end mode)."""
        self._count("published")
        self._count("readings", readings)

    # ---------------------------------------------------------------------------------------
    # Lifetime

    def start(self) -> None:
        """Connect to the platform broker and subscribe to every MQTT source."""
        if self.sender is not None:
            self.sender.start()
        self.publisher.start()
        for source in self.config.sources:
            if source.protocol != "http" and source.transport == "mqtt":
                self._start_source(source)

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Block until the publisher is connected and every source subscribed."""
        if not self.publisher.wait_connected(timeout):
            return False
        return all(ev.wait(timeout) for ev in self._subscribed.values())

    def stop(self) -> None:
        """Disconnect everything (messages not yet acknowledged are redelivered later)."""
        if self._stopped:
            return
        self._stopped = True
        for name, client in self._clients.items():
            self._host_offline(name, client)
            client.disconnect()
            client.loop_stop()
        if self.sender is not None:
            self.sender.stop()
        self.publisher.stop()
        if self.outbox is not None:
            self.outbox.close()
        self.seq.close()
        self.rejects.close()

    def _host_offline(self, name: str, client: mqtt.Client) -> None:
        """Sparkplug host STATE offline before a clean disconnect (the Will only fires on a
        lost connection): edge nodes that wait for this primary host stop publishing and store
        their data until it is back (tck-id-host-topic-phid-death-payload-disconnect-clean)."""
        source = self.config.source(name)
        if source is None or source.protocol != "sparkplug" or not source.host_id:
            return
        body = json.dumps({"online": False, "timestamp": int(time.time() * 1000)})
        info = client.publish(host_state_topic(source.host_id), body, qos=1, retain=True)
        try:
            info.wait_for_publish(STATE_OFFLINE_TIMEOUT_S)
        except (RuntimeError, ValueError) as exc:  # not connected: the Will tells the same
            logger.warning("source %s: host STATE offline not sent: %s", name, exc)
            return
        if not info.is_published():
            logger.warning("source %s: host STATE offline not confirmed in time", name)

    def _link(self, name: str, up: bool, why: str = "") -> None:
        """Record a source's broker link; log only when it changes."""
        with self._count_lock:
            link = self.links.setdefault(name, SourceLink())
            changed = link.connected != up or (not up and link.error is None)
            link.connected, link.error = up, (None if up else why)
            if changed:
                link.since = datetime.now(UTC)
        if not changed or self._stopped:
            return
        if up:
            logger.info("source %s: broker reachable", name)
        else:
            logger.error("source %s: broker unreachable: %s (retrying)", name, why)

    def health(self) -> dict[str, Any]:
        """What /healthz shows: the platform link, every source's link, the counters."""
        with self._count_lock:
            sources = {
                name: {
                    "connected": link.connected,
                    "since": link.since.isoformat() if link.since else None,
                    "error": link.error,
                }
                for name, link in sorted(self.links.items())
            }
            counters = dict(self.counters)
        ok = self.publisher.connected and all(s["connected"] for s in sources.values())
        return {
            "ok": ok,
            "connected": self.publisher.connected,
            "sources": sources,
            "counters": counters,
            "data_format": self.config.onward.data_format,
            "rebirths": self.rebirths,
            "ack": {"end_to_end": True, **self.sender.status()}
            if self.sender is not None
            else {"end_to_end": False},
        }

    def _start_source(self, source: Source) -> None:
        ep = Endpoint(
            source.mqtt_url or self.config.onward.mqtt_url,
            source.client_id or f"{self.config.onward.client_id}-{source.name}",
            source.mqtt_version,
            source.username,
            source.password,
        )
        client = make_client(ep, manual_ack=True)
        subscribed = self._subscribed[source.name] = threading.Event()
        state_topic = state_body = None
        if source.protocol == "sparkplug" and source.host_id:
            # Sparkplug 3.0 host STATE: retained JSON; the Will carries the same timestamp.
            state_topic = host_state_topic(source.host_id)
            born = int(time.time() * 1000)
            state_body = json.dumps({"online": True, "timestamp": born})
            client.will_set(
                state_topic, json.dumps({"online": False, "timestamp": born}), qos=1, retain=True
            )

        self.links[source.name] = SourceLink()

        def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
            if reason.is_failure:
                self._link(source.name, False, f"{ep.url} refused the connection: {reason}")
                return
            self._link(source.name, True)
            logger.debug("source %s connected to %s", source.name, ep.url)
            if state_topic:
                # Our own STATE too (tck-id-host-topic-phid-birth-sub-required), one SUBACK.
                c.subscribe([(source.topic_filter, source.qos), (state_topic, 1)])
            else:
                c.subscribe(source.topic_filter, qos=source.qos)

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, codes: Any, props: Any) -> None:
            if state_topic and state_body:
                # The birth follows the subscriptions (tck-id-host-topic-phid-birth-required).
                c.publish(state_topic, state_body, qos=1, retain=True)
            subscribed.set()

        def on_disconnect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
            # Logged once per lost connection; paho reconnects by itself with backoff.
            subscribed.clear()
            self._link(source.name, False, f"disconnected from {ep.url}: {reason}")

        def on_connect_fail(c: mqtt.Client, u: Any) -> None:
            self._link(source.name, False, f"cannot connect to {ep.url}")

        def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
            mid, qos = msg.mid, msg.qos

            def ack(_d: Delivery) -> None:
                c.ack(mid, qos)

            if state_topic is not None and msg.topic == state_topic:
                # Someone said we are offline while we are not (a stale retained Will, another
                # instance): say online again (tck-id-message-flow-hid-sparkplug-state-message-
                # delivered).
                if state_body and not self._stopped and not _says_online(bytes(msg.payload)):
                    logger.warning("source %s: host STATE said offline; republishing", source.name)
                    c.publish(state_topic, state_body, qos=1, retain=True)
                c.ack(mid, qos)
                return

            self.process(source, msg.topic, bytes(msg.payload), done=ack, command=c.publish)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_disconnect = on_disconnect
        client.on_connect_fail = on_connect_fail
        client.on_message = on_message
        self._clients[source.name] = client
        connect_async(client, ep)
        client.loop_start()

    # ---------------------------------------------------------------------------------------
    # The pipeline

    def process(
        self,
        source: Source,
        topic_name: str,
        payload: bytes,
        *,
        done: DeliveryDone,
        command: Callable[..., Any] | None = None,
        handler: Handler | None = None,
    ) -> None:
        """Map one foreign message and hand it on; `done` runs once it is safe to acknowledge."""
        self._count("messages")
        delivery = Delivery()
        try:
            try:
                outcome = (handler or self._handlers[source.name])(topic_name, payload)
            except PayloadError as exc:
                delivery.dead = exc.reason
                self._dead(topic_name, payload, exc.reason)
                done(delivery)
                return
            except Exception as exc:  # a bug must not stop the bridge; the message is kept
                logger.exception("source %s: handler failed on %s", source.name, topic_name)
                self._count("errors")
                delivery.dead = f"internal error: {type(exc).__name__}: {exc}"
                self._dead(topic_name, payload, delivery.dead)
                done(delivery)
                return
            for item in outcome.unknown:
                self.rejects.quarantine(topic_name, source.name, item)
                delivery.quarantined += 1
                self._count("quarantined")
            if outcome.dead:
                delivery.dead = "; ".join(outcome.dead)
                self._dead(topic_name, payload, delivery.dead)
        except Exception as exc:
            # The reject record could not be written: leave the message unacknowledged (the
            # foreign broker redelivers it after a reconnect). Logged once per outage.
            self._count("errors")
            if self._rejects_ok:
                self._rejects_ok = False
                logger.error("cannot record rejects (%s); not acknowledging them", exc)
            return
        if not self._rejects_ok:
            self._rejects_ok = True
            logger.info("recording rejects again")
        if command is not None:
            for cmd_topic, cmd_payload in outcome.commands:
                command(cmd_topic, cmd_payload, qos=0)
        self._publish(outcome, delivery, done, topic_name, payload)

    def _dead(self, topic_name: str, payload: bytes, reason: str) -> None:
        self.rejects.dead_letter(topic_name, payload, reason)
        self._count("dead_letters")

    def _refused(self, topic_name: str, payload: bytes) -> Callable[[str], None]:
        def record(reason: str) -> None:
            self._count("refused")
            logger.warning("%s", reason)
            try:
                self._dead(topic_name, payload, reason)
            except Exception:
                logger.exception("cannot record a refused publish")

        return record

    def _publish(
        self,
        outcome: Outcome,
        delivery: Delivery,
        done: DeliveryDone,
        topic_name: str,
        payload: bytes,
    ) -> None:
        countdown = _Countdown(delivery, done, self._refused(topic_name, payload))
        now = datetime.now(UTC)

        def send(t: str, body: bytes, retain: bool, readings: int = 0) -> None:
            def confirmed(ok: bool, reason: str) -> None:
                if ok:
                    self._count("published")
                    self._count("readings", readings)
                countdown.confirm(ok, reason, t, readings)

            countdown.add()
            self.publisher.publish(t, body, retain, confirmed)

        # Births before data: a consumer sees the gateway online before its readings.
        for change in outcome.states:
            with self._states_lock:
                self._states[change.ref] = (change.online, change.bd_seq)
            state = self._state(change.ref, change.online, change.bd_seq, now)
            send(topic(change.ref.site, change.ref.gateway, TopicKind.STATE), encode(state), True)
        if self.outbox is not None and self.sender is not None:
            # Handed on = durable in the outbox (the guarantee starts here, also for QoS 0
            # Sparkplug data); the sender publishes and re-sends until ingest confirms.
            try:
                stored = [
                    m
                    for ref, readings in outcome.readings.items()
                    for m in self.outbox.store(
                        ref.site, ref.gateway, now, readings, self.v2.get(ref)
                    )
                ]
            except Exception as exc:  # a full disk: leave the foreign message unacknowledged
                self._count("errors")
                logger.error("cannot store data messages in the bridge outbox: %s", exc)
                return
            sizes = {key: n for key, _body, n in stored}
            for _ in stored:
                countdown.add()
            if self.outbox.path is not None:
                for key, n in sizes.items():
                    countdown.confirm(True, "", topic(key[0], key[1], TopicKind.DATA), n)
                self.sender.submit(list(sizes))
            else:
                # An outbox in memory dies with the process: the foreign message waits for
                # the broker's PUBACK as in PUBACK-only mode (re-sends still cover a broker
                # that loses what it acknowledged).
                def first_ack(key: tuple[str, str, int]) -> Callable[[bool, str], None]:
                    t = topic(key[0], key[1], TopicKind.DATA)
                    return lambda ok, why: countdown.confirm(ok, why, t, sizes[key])

                self.sender.submit(list(sizes), first_ack)
        else:
            for ref, readings in outcome.readings.items():
                i = 0
                while i < len(readings):  # split by count and by encoded size (encode_data)
                    body, fits = encode_data(
                        ref.gateway, self.seq.take(ref.site, ref.gateway), now, readings[i:]
                    )
                    send(topic(ref.site, ref.gateway, TopicKind.DATA), body, False, fits)
                    i += fits
        refs = {ref for ref, _ in outcome.health} | {ref for ref, _ in outcome.alarms}
        refs |= set(outcome.cleared)
        for ref in sorted(refs, key=lambda r: (r.site, r.gateway)):
            status = self._status(ref, outcome, now)
            send(topic(ref.site, ref.gateway, TopicKind.STATUS), encode(status), False)
        countdown.arm()

    def _state(self, ref: GatewayRef, online: bool, bd_seq: int, now: datetime) -> StateMessage:
        """A birth or death of a mapped gateway; with contract v2 it declares the sensors."""
        v2 = self.v2.get(ref)
        if v2 is None:
            return StateMessage(gw=ref.gateway, online=online, bd_seq=bd_seq, ts=now)
        return StateMessage(
            gw=ref.gateway,
            online=online,
            bd_seq=bd_seq,
            ts=now,
            schema_=v2.schema,
            sensors=v2.decls,
        )

    def _on_connected(self) -> None:
        """The platform link is up (again), on the publisher's network thread: with contract
        v2, declare every mapped gateway's sensors in its birth before any data leaves (the
        sender re-sends a second later). A gateway only Sparkplug maps is declared once its
        edge node has been seen; any other is declared online (the bridge speaks for it)."""
        if self.v2:
            with self._states_lock:
                states = dict(self._states)
            for ref in sorted(self.v2, key=lambda r: (r.site, r.gateway)):
                if ref in states or ref not in self._sparkplug_only:
                    self._publish_birth(ref, *states.get(ref, (True, 0)))
        if self.sender is not None:
            self.sender.connected()

    def _publish_birth(self, ref: GatewayRef, online: bool, bd_seq: int) -> None:
        state = self._state(ref, online, bd_seq, datetime.now(UTC))

        def birth_done(ok: bool, reason: str) -> None:
            if not ok:
                logger.error("platform broker refused the birth of %s: %s", ref, reason)

        self.publisher.publish(
            topic(ref.site, ref.gateway, TopicKind.STATE), encode(state), True, birth_done
        )

    def _on_rebirth(self, topic_name: str, payload: bytes) -> None:
        """Ingest has no birth for the schema of a v2 message (on the publisher's network
        thread): publish the gateway's birth again (its last known state — a bridge that never
        saw a Sparkplug birth for it speaks for it: online, bd_seq 0), then re-send every
        unconfirmed message of its stream from the one that could not be resolved."""
        parts = topic_name.split("/")
        if len(parts) != 6 or self.outbox is None or self.sender is None:
            return
        ref = GatewayRef(parts[2], parts[3])
        try:
            req = decode_rebirth(topic_name, payload)
        except ContractError as exc:
            logger.warning("bridge: unreadable rebirth request on %s: %s", topic_name, exc)
            return
        if ref not in self.v2 or (req.epoch is not None and req.epoch != self.outbox.epoch):
            return  # not a gateway of this bridge's v2 streams, or an earlier outbox file
        with self._states_lock:
            self.rebirths += 1
            online, bd_seq = self._states.get(ref, (True, 0))
        logger.info(
            "bridge: the centre asks for the birth of %s/%s (schema %d, seq %d); publishing it",
            ref.site, ref.gateway, req.schema_, req.seq,
        )  # fmt: skip
        self._publish_birth(ref, online, bd_seq)
        self.sender.rebirth(ref.site, ref.gateway, req.seq)

    def _status(self, ref: GatewayRef, outcome: Outcome, now: datetime) -> StatusMessage:
        with self._health_lock:
            known = self._health.setdefault(ref, {})
            for r, h in outcome.health:
                if r == ref:
                    known[h.device] = merge_health(known.get(h.device), h)
            devices = [
                DeviceHealth(
                    device=h.device,
                    state="ok",
                    last_good_poll=h.ts,
                    battery_pct=h.battery_pct,
                    rssi_dbm=h.rssi_dbm,
                    snr_db=h.snr_db,
                )
                for h in sorted(known.values(), key=lambda h: h.device)
            ]
        return StatusMessage(
            gw=ref.gateway,
            ts=now,
            outbox_depth=self.outbox.depth if self.outbox else self.publisher.pending,
            evicted_total=self.outbox.evicted_total if self.outbox else 0,
            published_total=self.publisher.published_total,
            devices=devices,
            alarms=[a for r, a in outcome.alarms if r == ref],
        )
