"""Dashboard: the ingest pipeline (rate, commit latency, consumer lag, dead letters).

Metric names are those `ingest.metrics.Metrics` registers (prometheus-client adds `_total` to
counters and `_bucket`/`_sum`/`_count` to histograms); a test checks every name used here.
"""

from __future__ import annotations

from dashboards.model import Dashboard, Panel, PromTarget, SqlTarget, Threshold

DASHBOARD = Dashboard(
    uid="oxy-pipeline",
    title="Luồng dữ liệu / Ingest pipeline",
    folder_uid="oxy-engineering",
    description=(
        "MQTT → ingest → PostgreSQL: throughput, batch commit latency, consumer lag (publish → "
        "commit), dead letters and quarantine. Nothing is silently dropped: every rejected "
        "message is in dead_letters with its reason."
    ),
    tags=("oxy", "pipeline"),
    time_from="now-6h",
    refresh="30s",
    panels=(
        Panel(
            title="Số đọc ghi vào CSDL / Readings stored per second",
            type="timeseries",
            unit="reqps",
            targets=(
                PromTarget(
                    "sum(rate(oxy_ingest_readings_total[$__rate_interval]))", legend="stored"
                ),
                PromTarget(
                    "sum(rate(oxy_ingest_duplicate_readings_total[$__rate_interval]))",
                    legend="duplicates (redeliveries)",
                ),
            ),
        ),
        Panel(
            title="Tin nhắn theo loại / Messages per second by kind",
            type="timeseries",
            unit="reqps",
            targets=(
                PromTarget(
                    "sum by (kind) (rate(oxy_ingest_messages_total[$__rate_interval]))",
                    legend="{{kind}}",
                ),
            ),
        ),
        Panel(
            title="Thời gian commit / Batch commit latency",
            type="timeseries",
            unit="s",
            targets=(
                PromTarget(
                    "histogram_quantile(0.5, sum by (le) "
                    "(rate(oxy_ingest_commit_seconds_bucket[$__rate_interval])))",
                    legend="p50",
                ),
                PromTarget(
                    "histogram_quantile(0.99, sum by (le) "
                    "(rate(oxy_ingest_commit_seconds_bucket[$__rate_interval])))",
                    legend="p99",
                ),
            ),
        ),
        Panel(
            title="Độ trễ / Consumer lag (sent → committed)",
            type="timeseries",
            unit="s",
            targets=(
                PromTarget(
                    "histogram_quantile(0.99, sum by (le) "
                    "(rate(oxy_ingest_consumer_lag_seconds_bucket[$__rate_interval])))",
                    legend="p99",
                ),
                PromTarget("max(oxy_ingest_consumer_lag_last_seconds)", legend="last batch max"),
            ),
        ),
        Panel(
            title="Kích thước lô / Readings per batch",
            type="timeseries",
            unit="short",
            targets=(
                PromTarget(
                    "sum(rate(oxy_ingest_batch_readings_sum[$__rate_interval])) / "
                    "sum(rate(oxy_ingest_batch_readings_count[$__rate_interval]))",
                    legend="mean",
                ),
            ),
        ),
        Panel(
            title="Chưa xác nhận, lỗi CSDL / Unacked messages, database errors",
            type="timeseries",
            unit="short",
            targets=(
                PromTarget("sum(oxy_ingest_unacked_messages)", legend="unacked"),
                PromTarget(
                    "sum by (kind) (increase(oxy_ingest_db_errors_total[$__rate_interval]))",
                    legend="db errors {{kind}}",
                ),
            ),
        ),
        Panel(
            title="Tổng hợp phút/giờ/ngày / Rollup rebuild time and age (plain PostgreSQL)",
            type="timeseries",
            unit="s",
            targets=(
                PromTarget(
                    "histogram_quantile(0.99, sum by (le) "
                    "(rate(oxy_ingest_rollup_flush_seconds_bucket[$__rate_interval])))",
                    legend="flush p99 (s)",
                ),
                PromTarget(
                    "time() - max(oxy_ingest_rollup_last_success_seconds)",
                    legend="since the last flush (s)",
                ),
            ),
        ),
        Panel(
            title="Kết nối / Database and broker connection",
            type="stat",
            width=12,
            height=5,
            thresholds=(Threshold("red"), Threshold("green", 1.0)),
            targets=(
                PromTarget("min(oxy_ingest_database_up)", legend="database", instant=True),
                PromTarget("min(oxy_ingest_mqtt_connected)", legend="broker", instant=True),
            ),
        ),
        Panel(
            title="Thư lỗi, cách ly, xung đột / Dead letters, quarantine, conflicts per minute",
            type="timeseries",
            unit="short",
            width=12,
            height=5,
            targets=(
                PromTarget(
                    "sum(increase(oxy_ingest_dead_letters_total[1m]))", legend="dead letters"
                ),
                PromTarget("sum(increase(oxy_ingest_quarantined_total[1m]))", legend="quarantine"),
                PromTarget("sum(increase(oxy_ingest_conflicts_total[1m]))", legend="conflicts"),
                # every worker sees every drop in the broker's $SYS log: max, not sum
                PromTarget(
                    "max(increase(oxy_broker_oversize_drops_total[1m]))",
                    legend="gói quá cỡ broker bỏ / oversize packets dropped by the broker",
                ),
            ),
        ),
        Panel(
            title="Thư lỗi theo lý do / Dead letters by reason (per hour)",
            type="timeseries",
            unit="short",
            targets=(
                SqlTarget(
                    """
SELECT $__timeGroupAlias(received_at, '1h'), split_part(reason, ':', 1) AS metric,
       count(*) AS value
FROM grafana.dead_letters
WHERE $__timeFilter(received_at)
GROUP BY 1, 2
ORDER BY 1, 2
"""
                ),
            ),
        ),
        Panel(
            title="Độ mới của dữ liệu / Seconds since the newest reading arrived",
            type="stat",
            unit="s",
            decimals=0,
            thresholds=(Threshold("green"), Threshold("orange", 120.0), Threshold("red", 600.0)),
            targets=(
                SqlTarget(
                    "SELECT extract(epoch FROM now() - max(received_at)) AS seconds "
                    "FROM grafana.sensor_latest",
                    format="table",
                ),
            ),
        ),
        Panel(
            title="Thư lỗi gần nhất / Latest dead letters",
            type="table",
            width=24,
            targets=(
                SqlTarget(
                    """
SELECT received_at AS "Lúc / At", topic AS "Topic", reason AS "Lý do / Reason",
       payload_size AS "Bytes"
FROM grafana.dead_letters
WHERE $__timeFilter(received_at)
ORDER BY received_at DESC
LIMIT 100
""",
                    format="table",
                ),
            ),
        ),
        Panel(
            title="Cách ly theo gateway / Quarantine by gateway",
            type="table",
            width=24,
            targets=(
                SqlTarget(
                    """
SELECT site AS "Site", gateway AS "Gateway", reason AS "Lý do / Reason",
       count(*) AS "Số / Count", max(received_at) AS "Gần nhất / Latest"
FROM grafana.quarantine
WHERE $__timeFilter(received_at)
GROUP BY site, gateway, reason
ORDER BY 4 DESC
""",
                    format="table",
                ),
            ),
        ),
    ),
)
