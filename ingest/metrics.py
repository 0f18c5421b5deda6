"""Prometheus metrics of the ingest service (served on /metrics when OXY_METRICS_PORT > 0)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    """One registry per service instance (tests run several in a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "oxy_ingest_messages", "MQTT messages committed, by topic kind", ["kind"], registry=r
        )
        self.readings = Counter(
            "oxy_ingest_readings", "Readings newly stored in the readings table", registry=r
        )
        self.duplicates = Counter(
            "oxy_ingest_duplicate_readings",
            "Readings already stored with the same value (redeliveries, replays)",
            registry=r,
        )
        self.dead_letters = Counter(
            "oxy_ingest_dead_letters", "Messages written to dead_letters", registry=r
        )
        self.quarantined = Counter(
            "oxy_ingest_quarantined", "Readings/messages written to quarantine", registry=r
        )
        self.conflicts = Counter(
            "oxy_ingest_conflicts", "Readings that conflict with a stored reading", registry=r
        )
        self.acks_published = Counter(
            "oxy_ingest_acks_published",
            "End-to-end acknowledgements (watermarks) published to gateways",
            registry=r,
        )
        self.oversize_drops = Counter(
            "oxy_broker_oversize_drops",
            "Packets the broker dropped as over max_packet_size (its log on $SYS/broker/log/N, "
            "seen by this worker while connected)",
            registry=r,
        )
        self.db_errors = Counter(
            "oxy_ingest_db_errors", "Failed batch writes (retried)", ["kind"], registry=r
        )
        self.batch_readings = Histogram(
            "oxy_ingest_batch_readings",
            "Readings per committed batch",
            buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000),
            registry=r,
        )
        self.commit_seconds = Histogram(
            "oxy_ingest_commit_seconds",
            "Time to write and commit one batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.lag_seconds = Histogram(
            "oxy_ingest_consumer_lag_seconds",
            "Commit time minus the gateway's sent_at of each data message",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
            registry=r,
        )
        self.rollup_seconds = Histogram(
            "oxy_ingest_rollup_flush_seconds",
            "Time to rebuild the queued rollup buckets (plain PostgreSQL)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.rollup_buckets = Counter(
            "oxy_ingest_rollup_buckets", "1 minute rollup buckets rebuilt", registry=r
        )
        self.rollup_ok_at = Gauge(
            "oxy_ingest_rollup_last_success_seconds",
            "Unix time of the last rollup flush that succeeded (or found another worker at it)",
            registry=r,
        )
        self.last_lag = Gauge(
            "oxy_ingest_consumer_lag_last_seconds",
            "Largest consumer lag in the last committed batch",
            registry=r,
        )
        self.db_up = Gauge("oxy_ingest_database_up", "1 when the last write succeeded", registry=r)
        self.mqtt_connected = Gauge(
            "oxy_ingest_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.unacked = Gauge(
            "oxy_ingest_unacked_messages", "Messages received and not yet acknowledged", registry=r
        )

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Serve /metrics on `port` in a background thread."""
        start_http_server(port, addr=addr, registry=self.registry)
