"""Dashboard: the national oxygen overview from telemetry (monitored LOX tanks, per province).

No map here on purpose: the web UI owns the coordination map, whose base layer shows the Hoàng Sa
and Trường Sa archipelagos as Vietnamese law requires; Grafana's default base layers do not.
"""

from __future__ import annotations

from dashboards.model import Dashboard, Panel, SqlTarget, Threshold
from dashboards.tanks import DAYS_THRESHOLDS

# Below this many days of supply a facility "needs more" (Settings.needs_more_days default).
NEEDS_MORE_DAYS = 3.0

DASHBOARD = Dashboard(
    uid="oxy-national",
    title="Tổng quan oxy toàn quốc / National oxygen overview",
    folder_uid="oxy-national",
    description=(
        "Tồn kho oxy lỏng theo tỉnh từ các bồn có giám sát / LOX stock of the monitored tanks "
        "by province (kg; Nm3 at 0 °C, 1 atm) and the facilities running low."
    ),
    tags=("oxy", "national"),
    time_from="now-30d",
    refresh="5m",
    panels=(
        Panel(
            title="Tổng tồn kho / National stock (Nm3)",
            type="stat",
            unit="m3",
            decimals=0,
            width=6,
            height=5,
            targets=(
                SqlTarget(
                    "SELECT sum(contents_nm3) AS nm3 FROM grafana.facility_supply",
                    format="table",
                ),
            ),
        ),
        Panel(
            title="Tổng tồn kho / National stock (kg LOX)",
            type="stat",
            unit="masskg",
            decimals=0,
            width=6,
            height=5,
            targets=(
                SqlTarget(
                    "SELECT sum(contents_kg) AS kg FROM grafana.facility_supply",
                    format="table",
                ),
            ),
        ),
        Panel(
            title="Cơ sở có giám sát / Monitored facilities",
            type="stat",
            width=6,
            height=5,
            targets=(
                SqlTarget(
                    "SELECT count(*) FILTER (WHERE tanks_reporting > 0) AS reporting, "
                    "count(*) AS total FROM grafana.facility_supply",
                    format="table",
                ),
            ),
        ),
        Panel(
            title=(
                f"Cần bổ sung (< {NEEDS_MORE_DAYS:g} ngày) / Needs more (< {NEEDS_MORE_DAYS:g} d)"
            ),
            type="stat",
            width=6,
            height=5,
            thresholds=(Threshold("green"), Threshold("red", 1.0)),
            targets=(
                SqlTarget(
                    f"SELECT count(*) AS facilities FROM grafana.facility_supply "
                    f"WHERE days_of_supply < {NEEDS_MORE_DAYS}",
                    format="table",
                ),
            ),
        ),
        Panel(
            title="Tồn kho toàn quốc theo thời gian / National stock over time (Nm3)",
            type="timeseries",
            unit="m3",
            width=24,
            min_interval="1h",
            targets=(
                SqlTarget(
                    """
SELECT "time", sum(nm3) AS "Nm3"
FROM (
    SELECT $__timeGroupAlias(bucket, $__interval), tank_id, avg(contents_nm3) AS nm3
    FROM grafana.tank_contents_1h
    WHERE $__timeFilter(bucket)
    GROUP BY 1, 2
) per_tank
GROUP BY 1
ORDER BY 1
"""
                ),
            ),
        ),
        Panel(
            title="Theo tỉnh / By province",
            type="table",
            width=24,
            height=10,
            targets=(
                SqlTarget(
                    f"""
SELECT province AS "Tỉnh / Province",
       count(*) AS "Cơ sở / Facilities",
       round(sum(contents_nm3)::numeric, 0) AS "Tồn / Stock (Nm3)",
       round(sum(avg_daily_nm3)::numeric, 0) AS "Nhu cầu / Need (Nm3/ngày·day)",
       round((sum(usable_kg) / nullif(sum(avg_daily_kg), 0))::numeric, 1)
           AS "Số ngày / Days of supply",
       count(*) FILTER (WHERE days_of_supply < {NEEDS_MORE_DAYS})
           AS "Cần bổ sung / Needs more"
FROM grafana.facility_supply
GROUP BY province
ORDER BY 5 ASC NULLS LAST, 1
""",
                    format="table",
                ),
            ),
        ),
        Panel(
            title="Cơ sở sắp hết oxy / Facilities running lowest",
            type="bargauge",
            unit="d",
            decimals=1,
            width=24,
            height=10,
            thresholds=DAYS_THRESHOLDS,
            options={
                "reduceOptions": {"values": True, "calcs": [], "fields": "/^days_of_supply$/"},
                "orientation": "horizontal",
            },
            targets=(
                SqlTarget(
                    """
SELECT site || ' — ' || facility AS facility, days_of_supply
FROM grafana.facility_supply
WHERE days_of_supply IS NOT NULL
ORDER BY days_of_supply ASC
LIMIT 20
""",
                    format="table",
                ),
            ),
        ),
    ),
)
