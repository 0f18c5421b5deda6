"""Dashboard: contents and days of supply of the LOX tanks, per province, facility and tank."""

from __future__ import annotations

from dashboards.model import Dashboard, Panel, QueryVariable, SqlTarget, Threshold

PROVINCE = QueryVariable(
    name="province",
    label="Tỉnh / Province",
    query="SELECT province_code AS __value, province AS __text FROM grafana.provinces ORDER BY 2",
)
FACILITY = QueryVariable(
    name="facility",
    label="Cơ sở y tế / Facility",
    query="""
SELECT facility_id AS __value, site || ' — ' || facility AS __text
FROM grafana.facilities WHERE province_code IN ($province) ORDER BY 2
""",
)
TANK = QueryVariable(
    name="tank",
    label="Bồn / Tank",
    query="""
SELECT tank_id AS __value, site || ' / ' || tank AS __text
FROM grafana.tank_supply WHERE facility_id IN ($facility) ORDER BY 2
""",
)

# Minute rollups up to two days, hourly beyond: one panel, the right resolution for any range.
_CONTENTS = """
SELECT $__timeGroupAlias(bucket, $__interval), label AS metric, avg({col}) AS value
FROM (
    SELECT bucket, site || ' / ' || tank AS label, {col} FROM grafana.tank_contents_1m
    WHERE $__timeFilter(bucket) AND tank_id IN ($tank)
      AND $__timeTo()::timestamptz - $__timeFrom()::timestamptz <= INTERVAL '2 days'
    UNION ALL
    SELECT bucket, site || ' / ' || tank AS label, {col} FROM grafana.tank_contents_1h
    WHERE $__timeFilter(bucket) AND tank_id IN ($tank)
      AND $__timeTo()::timestamptz - $__timeFrom()::timestamptz > INTERVAL '2 days'
) c
GROUP BY 1, 2
ORDER BY 1, 2
"""

_PRESSURE = """
SELECT $__timeGroupAlias(bucket, $__interval), label AS metric, avg(last_value) AS value
FROM (
    SELECT bucket, site || ' / ' || sensor AS label, last_value FROM grafana.readings_1m
    WHERE $__timeFilter(bucket) AND tank_id IN ($tank) AND quantity = 'head_pressure'
      AND $__timeTo()::timestamptz - $__timeFrom()::timestamptz <= INTERVAL '2 days'
    UNION ALL
    SELECT bucket, site || ' / ' || sensor AS label, last_value FROM grafana.readings_1h
    WHERE $__timeFilter(bucket) AND tank_id IN ($tank) AND quantity = 'head_pressure'
      AND $__timeTo()::timestamptz - $__timeFrom()::timestamptz > INTERVAL '2 days'
) p
GROUP BY 1, 2
ORDER BY 1, 2
"""

DAYS_THRESHOLDS = (Threshold("red"), Threshold("orange", 1.0), Threshold("green", 3.0))

DASHBOARD = Dashboard(
    uid="oxy-tanks",
    title="Bồn oxy lỏng / LOX tanks",
    folder_uid="oxy-engineering",
    description=(
        "Lượng oxy trong bồn và số ngày còn đủ / Tank contents (kg LOX; Nm3 at 0 °C, 1 atm) "
        "and days of supply from the DP readings through each tank's calibration table."
    ),
    tags=("oxy", "tanks"),
    variables=(PROVINCE, FACILITY, TANK),
    panels=(
        Panel(
            title="Số ngày còn đủ (thấp nhất) / Days of supply (lowest)",
            type="stat",
            unit="d",
            decimals=1,
            width=6,
            height=6,
            thresholds=DAYS_THRESHOLDS,
            targets=(
                SqlTarget(
                    "SELECT min(days_of_supply) AS days FROM grafana.tank_supply "
                    "WHERE tank_id IN ($tank)",
                    format="table",
                ),
            ),
        ),
        Panel(
            title="Tổng lượng oxy / Total contents (Nm3)",
            type="stat",
            unit="m3",
            decimals=0,
            width=6,
            height=6,
            targets=(
                SqlTarget(
                    "SELECT sum(contents_nm3) AS nm3 FROM grafana.tank_supply "
                    "WHERE tank_id IN ($tank)",
                    format="table",
                ),
            ),
        ),
        Panel(
            title="Mức đầy / Fill level (%)",
            type="bargauge",
            unit="percent",
            decimals=0,
            width=12,
            height=6,
            thresholds=(Threshold("red"), Threshold("orange", 20.0), Threshold("green", 40.0)),
            options={"reduceOptions": {"values": True, "calcs": [], "fields": "/^fill_pct$/"}},
            targets=(
                SqlTarget(
                    """
SELECT site || ' / ' || tank AS tank, fill_pct FROM grafana.tank_supply
WHERE tank_id IN ($tank) ORDER BY 1
""",
                    format="table",
                ),
            ),
        ),
        Panel(
            title="Lượng oxy lỏng / Contents (kg LOX)",
            type="timeseries",
            unit="masskg",
            min_interval="1m",
            targets=(SqlTarget(_CONTENTS.format(col="contents_kg")),),
        ),
        Panel(
            title="Lượng oxy quy đổi / Contents (Nm3, 0 °C, 1 atm)",
            type="timeseries",
            unit="m3",
            min_interval="1m",
            targets=(SqlTarget(_CONTENTS.format(col="contents_nm3")),),
        ),
        Panel(
            title="Tồn kho và số ngày còn đủ / Stock and days of supply",
            type="table",
            width=24,
            targets=(
                SqlTarget(
                    """
SELECT site AS "Cơ sở / Facility", tank AS "Bồn / Tank",
       round(contents_kg::numeric, 0) AS "kg",
       round(contents_nm3::numeric, 0) AS "Nm3",
       round(fill_pct::numeric, 1) AS "%",
       round(avg_daily_kg::numeric, 0) AS "kg/ngày (day)",
       round(days_of_supply::numeric, 1) AS "Số ngày / Days",
       last_reading AS "Lần đọc cuối / Last reading"
FROM grafana.tank_supply
WHERE tank_id IN ($tank)
ORDER BY days_of_supply ASC NULLS LAST, site, tank
""",
                    format="table",
                ),
            ),
        ),
        Panel(
            title="Tiêu thụ theo ngày báo cáo / Consumption per report day (kg)",
            type="timeseries",
            unit="masskg",
            targets=(
                SqlTarget(
                    """
SELECT window_end AS "time", tank AS metric, consumption_kg AS value
FROM grafana.tank_windows
WHERE $__timeFilter(window_end) AND tank_id IN ($tank)
ORDER BY 1, 2
"""
                ),
            ),
        ),
        Panel(
            title="Áp suất bồn / Head pressure (bar)",
            type="timeseries",
            unit="pressurebar",
            min_interval="1m",
            targets=(SqlTarget(_PRESSURE),),
        ),
    ),
)
