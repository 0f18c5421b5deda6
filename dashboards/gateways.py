"""Dashboard: health of the edge gateways (online, last seen, outbox, evictions, Modbus devices)."""

from __future__ import annotations

from dashboards.model import Dashboard, Panel, QueryVariable, SqlTarget, Threshold
from dashboards.tanks import PROVINCE

# A gateway that has said nothing for this long counts as offline even without its Will
# (a dead link may keep the broker from publishing the Will for 1.5 keep-alives).
SILENT_AFTER_S = 600

FACILITY = QueryVariable(
    name="facility",
    label="Cơ sở y tế / Facility",
    query="""
SELECT DISTINCT facility_id AS __value, site || ' — ' || facility AS __text
FROM grafana.gateway_health WHERE province_code IN ($province) ORDER BY 2
""",
)

_OFFLINE = f"(online IS NOT TRUE OR silent_s IS NULL OR silent_s > {SILENT_AFTER_S})"


def _fleet_stat(title: str, select: str, thresholds: tuple[Threshold, ...]) -> Panel:
    """A stat panel over the selected facilities' gateways that are not revoked."""
    return Panel(
        title=title,
        type="stat",
        width=6,
        height=5,
        thresholds=thresholds,
        targets=(
            SqlTarget(
                f"""
SELECT {select}
FROM grafana.gateway_health
WHERE facility_id IN ($facility) AND revoked_at IS NULL
""",
                format="table",
            ),
        ),
    )


def _status_series(title: str, column: str) -> Panel:
    """A time series, one line per gateway, of a counter its status messages carry."""
    return Panel(
        title=title,
        type="timeseries",
        unit="short",
        targets=(
            SqlTarget(
                f"""
SELECT $__timeGroupAlias(received_at, $__interval), gateway AS metric,
       max({column}) AS value
FROM grafana.gateway_history
WHERE $__timeFilter(received_at) AND kind = 'status' AND facility_id IN ($facility)
GROUP BY 1, 2
ORDER BY 1, 2
"""
            ),
        ),
    )


DASHBOARD = Dashboard(
    uid="oxy-gateways",
    title="Gateway / Gateway health",
    folder_uid="oxy-engineering",
    description=(
        "Trạng thái gateway tại bồn / Gateways at the tanks: online, last seen, durable outbox "
        "depth and age, evictions (never silent) and the state of every Modbus device."
    ),
    tags=("oxy", "gateways"),
    time_from="now-24h",
    variables=(PROVINCE, FACILITY),
    panels=(
        _fleet_stat(
            "Trực tuyến / Online",
            f"count(*) FILTER (WHERE NOT {_OFFLINE}) AS online",
            (Threshold("green"),),
        ),
        _fleet_stat(
            "Mất kết nối / Offline",
            f"count(*) FILTER (WHERE {_OFFLINE}) AS offline",
            (Threshold("green"), Threshold("red", 1.0)),
        ),
        _fleet_stat(
            "Hàng đợi chưa gửi / Outbox depth (readings)",
            "coalesce(sum(outbox_depth), 0) AS readings",
            (Threshold("green"), Threshold("orange", 10000.0)),
        ),
        _fleet_stat(
            "Bị loại khỏi hàng đợi / Evicted (total)",
            "coalesce(sum(evicted_total), 0) AS evicted",
            (Threshold("green"), Threshold("red", 1.0)),
        ),
        Panel(
            title="Danh sách gateway / Gateways",
            type="table",
            width=24,
            targets=(
                SqlTarget(
                    f"""
SELECT gateway AS "Gateway", site AS "Cơ sở / Facility",
       CASE WHEN {_OFFLINE} THEN 'offline' ELSE 'online' END AS "Trạng thái / State",
       last_seen AS "Lần cuối / Last seen",
       round(silent_s::numeric, 0) AS "Im lặng / Silent (s)",
       outbox_depth AS "Outbox", round(outbox_age_s::numeric, 0) AS "Outbox age (s)",
       evicted_total AS "Evicted", devices_failing AS "Thiết bị lỗi / Failing devices",
       devices_total AS "Thiết bị / Devices", version AS "Version"
FROM grafana.gateway_health
WHERE facility_id IN ($facility) AND revoked_at IS NULL
ORDER BY {_OFFLINE} DESC, devices_failing DESC, gateway
""",
                    format="table",
                ),
            ),
        ),
        Panel(
            title="Thiết bị Modbus / Modbus devices",
            type="table",
            width=24,
            targets=(
                SqlTarget(
                    """
SELECT gateway AS "Gateway", device AS "Thiết bị / Device", state AS "Trạng thái / State",
       last_good_poll AS "Lần đọc tốt cuối / Last good poll", error AS "Lỗi / Error",
       status_ts AS "Báo cáo lúc / Reported at"
FROM grafana.gateway_devices
WHERE facility_id IN ($facility)
ORDER BY (state = 'failing') DESC, gateway, device
""",
                    format="table",
                ),
            ),
        ),
        _status_series("Độ sâu hàng đợi / Outbox depth", "outbox_depth"),
        _status_series("Số bị loại (lũy kế) / Evictions (cumulative)", "evicted_total"),
        Panel(
            title="Kết nối / Online over time (1 = online)",
            type="timeseries",
            unit="short",
            width=24,
            targets=(
                SqlTarget(
                    """
SELECT received_at AS "time", gateway AS metric,
       CASE WHEN online THEN 1 ELSE 0 END AS value
FROM grafana.gateway_history
WHERE $__timeFilter(received_at) AND kind = 'state' AND facility_id IN ($facility)
ORDER BY 1, 2
"""
                ),
            ),
        ),
    ),
)
