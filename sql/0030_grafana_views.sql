-- Views for the engineers' Grafana dashboards (read by role `oxy_grafana`, schema `grafana` only).
-- Tank contents come from the DP readings through the tank's calibration (strapping) table valid
-- at the time of the reading, interpolated linearly and clamped at both ends exactly as
-- oxy.calibration.CalibrationTable does; gas figures are Nm3 at 0 °C, 101.325 kPa.
-- depends: 0004_rollups 0012_grafana_role 0020_accounting

-- Nm3 of oxygen gas per kg at 0 °C and 101.325 kPa (ideal gas, M = 31.999 g/mol: 0.7005),
-- the same figure as oxy.contract.NORMAL.kg_to_m3(1).
CREATE FUNCTION grafana.nm3_per_kg() RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (8.314462618 * 273.15) / (101325.0 * 0.031999) $$;

-- Contents (kg) of tank `p_tank` for a DP of `p_dp` inH2O at time `p_at`: the calibration version
-- with the latest valid_from <= p_at. NULL before the tank's first calibration (no guess).
-- SECURITY DEFINER because functions called from a view run with the caller's rights, and the
-- Grafana role may read the calibration tables only through this function.
CREATE FUNCTION grafana.tank_kg(p_tank bigint, p_at timestamptz, p_dp double precision)
RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    WITH cal AS (
        SELECT id FROM tank_calibrations
        WHERE tank_id = p_tank AND valid_from <= p_at
        ORDER BY valid_from DESC LIMIT 1
    ), lo AS (
        SELECT cp.dp_inh2o, cp.contents_kg FROM calibration_points cp, cal
        WHERE cp.calibration_id = cal.id AND cp.dp_inh2o <= p_dp
        ORDER BY cp.dp_inh2o DESC LIMIT 1
    ), hi AS (
        SELECT cp.dp_inh2o, cp.contents_kg FROM calibration_points cp, cal
        WHERE cp.calibration_id = cal.id AND cp.dp_inh2o >= p_dp
        ORDER BY cp.dp_inh2o ASC LIMIT 1
    )
    SELECT CASE
        WHEN p_dp IS NULL THEN NULL
        WHEN lo.dp_inh2o IS NULL THEN hi.contents_kg                  -- below the table: clamp
        WHEN hi.dp_inh2o IS NULL THEN lo.contents_kg                  -- above the table: clamp
        WHEN hi.dp_inh2o = lo.dp_inh2o THEN lo.contents_kg
        ELSE lo.contents_kg + (hi.contents_kg - lo.contents_kg)
                              * (p_dp - lo.dp_inh2o) / (hi.dp_inh2o - lo.dp_inh2o)
    END
    FROM (SELECT 1) AS one
    LEFT JOIN lo ON true
    LEFT JOIN hi ON true
$$;
REVOKE ALL ON FUNCTION grafana.tank_kg(bigint, timestamptz, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION grafana.tank_kg(bigint, timestamptz, double precision) TO oxy_grafana;
GRANT EXECUTE ON FUNCTION grafana.nm3_per_kg() TO oxy_grafana;

-- Registry context for the dashboard variables (province -> facility -> tank).
CREATE VIEW grafana.provinces AS
SELECT u.code AS province_code, u.name AS province
FROM admin_units u;

CREATE VIEW grafana.facilities AS
SELECT o.id AS facility_id, o.code AS site, o.name AS facility, o.province_code,
       u.name AS province, p.code AS parent, f.latitude, f.longitude, f.beds, f.icu_beds
FROM organisations o
JOIN facilities f ON f.org_id = o.id
LEFT JOIN admin_units u ON u.code = o.province_code
LEFT JOIN organisations p ON p.id = o.parent_id
WHERE o.kind = 'facility';

-- Rollups with registry context (any quantity), for pressure and other sensor panels.
CREATE VIEW grafana.readings_1m AS
SELECT r.bucket, r.first_value, r.last_value, r.min_value, r.max_value, r.n,
       s.id AS sensor_id, s.code AS sensor, s.quantity, s.unit, s.tank_id,
       g.code AS gateway, o.id AS facility_id, o.code AS site, o.province_code
FROM readings_1m r
JOIN sensors s ON s.id = r.sensor_id
JOIN gateways g ON g.id = s.gateway_id
JOIN organisations o ON o.id = g.facility_id;

CREATE VIEW grafana.readings_1h AS
SELECT r.bucket, r.first_value, r.last_value, r.min_value, r.max_value, r.n,
       s.id AS sensor_id, s.code AS sensor, s.quantity, s.unit, s.tank_id,
       g.code AS gateway, o.id AS facility_id, o.code AS site, o.province_code
FROM readings_1h r
JOIN sensors s ON s.id = r.sensor_id
JOIN gateways g ON g.id = s.gateway_id
JOIN organisations o ON o.id = g.facility_id;

-- Tank contents per rollup bucket: the DP rollups of the tank's DP sensor through the calibration
-- valid at the bucket's start. The map DP -> kg is non-decreasing, so min/max DP give min/max kg.
CREATE VIEW grafana.tank_contents_1m AS
SELECT t.id AS tank_id, t.code AS tank, t.facility_id, o.code AS site, o.province_code,
       r.bucket,
       grafana.tank_kg(t.id, r.bucket, r.last_value) AS contents_kg,
       grafana.tank_kg(t.id, r.bucket, r.min_value) AS min_kg,
       grafana.tank_kg(t.id, r.bucket, r.max_value) AS max_kg,
       grafana.tank_kg(t.id, r.bucket, r.last_value) * grafana.nm3_per_kg() AS contents_nm3,
       r.last_value AS dp_inh2o, r.n
FROM readings_1m r
JOIN sensors s ON s.id = r.sensor_id AND s.quantity = 'dp'
JOIN tanks t ON t.id = s.tank_id
JOIN organisations o ON o.id = t.facility_id;

CREATE VIEW grafana.tank_contents_1h AS
SELECT t.id AS tank_id, t.code AS tank, t.facility_id, o.code AS site, o.province_code,
       r.bucket,
       grafana.tank_kg(t.id, r.bucket, r.last_value) AS contents_kg,
       grafana.tank_kg(t.id, r.bucket, r.min_value) AS min_kg,
       grafana.tank_kg(t.id, r.bucket, r.max_value) AS max_kg,
       grafana.tank_kg(t.id, r.bucket, r.last_value) * grafana.nm3_per_kg() AS contents_nm3,
       r.last_value AS dp_inh2o, r.n
FROM readings_1h r
JOIN sensors s ON s.id = r.sensor_id AND s.quantity = 'dp'
JOIN tanks t ON t.id = s.tank_id
JOIN organisations o ON o.id = t.facility_id;

-- Per tank: the latest DP as contents, and the average daily consumption over the last 7
-- complete report windows (16:00 -> 16:00 Asia/Ho_Chi_Minh, the platform defaults), adjusted
-- for hours without data (consumption / coverage, as OpenLMIS adjusts for stock-out days): the
-- same figure as api.accounting.stock.average_daily / days_of_supply.
CREATE VIEW grafana.tank_supply AS
WITH latest AS (
    SELECT DISTINCT ON (s.tank_id) s.tank_id, sl.ts, sl.value AS dp_inh2o, sl.quality
    FROM sensor_latest sl
    JOIN sensors s ON s.id = sl.sensor_id AND s.quantity = 'dp' AND s.tank_id IS NOT NULL
    ORDER BY s.tank_id, sl.ts DESC
), recent AS (
    SELECT w.tank_id, w.consumption_kg, w.coverage,
           row_number() OVER (PARTITION BY w.tank_id ORDER BY w.report_day DESC) AS k
    FROM tank_windows w
    WHERE w.report_day <= ((now() AT TIME ZONE 'Asia/Ho_Chi_Minh') - INTERVAL '16 hours')::date
      AND w.consumption_kg IS NOT NULL AND w.coverage > 0
), usage AS (
    SELECT tank_id, sum(consumption_kg) / nullif(sum(coverage), 0) AS avg_daily_kg,
           sum(coverage) AS days_with_data
    FROM recent WHERE k <= 7
    GROUP BY tank_id
), now_kg AS (
    SELECT t.id AS tank_id, l.ts, l.quality, l.dp_inh2o,
           grafana.tank_kg(t.id, l.ts, l.dp_inh2o) AS contents_kg
    FROM tanks t
    LEFT JOIN latest l ON l.tank_id = t.id
)
SELECT t.id AS tank_id, t.code AS tank, t.name, t.facility_id, o.code AS site,
       o.name AS facility, o.province_code,
       n.ts AS last_reading, n.quality, n.dp_inh2o,
       t.capacity_kg, t.min_usable_kg,
       n.contents_kg,
       n.contents_kg * grafana.nm3_per_kg() AS contents_nm3,
       100.0 * n.contents_kg / t.capacity_kg AS fill_pct,
       greatest(n.contents_kg - t.min_usable_kg, 0) AS usable_kg,
       u.avg_daily_kg,
       u.avg_daily_kg * grafana.nm3_per_kg() AS avg_daily_nm3,
       u.days_with_data,
       CASE WHEN u.avg_daily_kg > 0
            THEN greatest(n.contents_kg - t.min_usable_kg, 0) / u.avg_daily_kg END AS days_of_supply
FROM tanks t
JOIN organisations o ON o.id = t.facility_id
JOIN now_kg n ON n.tank_id = t.id
LEFT JOIN usage u ON u.tank_id = t.id;

-- Per facility: sums over its monitored tanks; days of supply = usable / daily need.
CREATE VIEW grafana.facility_supply AS
SELECT f.facility_id, f.site, f.facility, f.province_code, f.province,
       count(ts.tank_id) AS tanks,
       count(ts.contents_kg) AS tanks_reporting,
       sum(ts.capacity_kg) AS capacity_kg,
       sum(ts.contents_kg) AS contents_kg,
       sum(ts.contents_nm3) AS contents_nm3,
       sum(ts.usable_kg) AS usable_kg,
       sum(ts.avg_daily_kg) AS avg_daily_kg,
       sum(ts.avg_daily_nm3) AS avg_daily_nm3,
       max(ts.last_reading) AS last_reading,
       sum(ts.usable_kg) / nullif(sum(ts.avg_daily_kg), 0) AS days_of_supply
FROM grafana.facilities f
JOIN grafana.tank_supply ts ON ts.facility_id = f.facility_id
GROUP BY f.facility_id, f.site, f.facility, f.province_code, f.province;

-- Per report window (the accounting results), for daily consumption and refill panels.
CREATE VIEW grafana.tank_windows AS
SELECT w.tank_id, t.code AS tank, t.facility_id, o.province_code, w.report_day,
       (w.report_day::timestamp + INTERVAL '16 hours') AT TIME ZONE 'Asia/Ho_Chi_Minh' AS window_end,
       w.open_kg, w.close_kg, w.min_kg, w.consumption_kg, w.refilled_kg, w.refills,
       w.coverage, w.readings
FROM tank_windows w
JOIN tanks t ON t.id = w.tank_id
JOIN organisations o ON o.id = t.facility_id;

-- Gateways: registry + the latest birth/death/status that ingest stored.
CREATE VIEW grafana.gateway_health AS
SELECT g.id AS gateway_id, g.code AS gateway, g.name, g.revoked_at,
       o.id AS facility_id, o.code AS site, o.name AS facility, o.province_code,
       gs.online, gs.last_seen, gs.state_at, gs.status_ts, gs.version, gs.config_hash,
       gs.bd_seq, gs.last_data_seq,
       gs.outbox_depth, gs.outbox_oldest,
       extract(epoch FROM now() - gs.outbox_oldest) AS outbox_age_s,
       gs.evicted_total, gs.published_total,
       extract(epoch FROM now() - gs.last_seen) AS silent_s,
       (SELECT count(*) FROM jsonb_array_elements(
            CASE WHEN jsonb_typeof(gs.devices) = 'array' THEN gs.devices ELSE '[]'::jsonb END) d
        WHERE d ->> 'state' = 'failing') AS devices_failing,
       CASE WHEN jsonb_typeof(gs.devices) = 'array' THEN jsonb_array_length(gs.devices) ELSE 0
       END AS devices_total,
       gs.alarms
FROM gateways g
JOIN organisations o ON o.id = g.facility_id
LEFT JOIN gateway_status gs ON gs.gateway_id = g.id;

-- One row per polled device (Modbus slave) from the gateway's last status message.
CREATE VIEW grafana.gateway_devices AS
SELECT g.id AS gateway_id, g.code AS gateway, o.id AS facility_id, o.code AS site,
       o.province_code, gs.status_ts,
       d ->> 'device' AS device, d ->> 'state' AS state,
       (d ->> 'last_good_poll')::timestamptz AS last_good_poll, d ->> 'error' AS error
FROM gateway_status gs
JOIN gateways g ON g.id = gs.gateway_id
JOIN organisations o ON o.id = g.facility_id
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(gs.devices) = 'array' THEN gs.devices ELSE '[]'::jsonb END) AS d;

CREATE VIEW grafana.gateway_history AS
SELECT h.received_at, h.kind, h.online, h.bd_seq, h.outbox_depth, h.evicted_total,
       g.id AS gateway_id, g.code AS gateway, o.id AS facility_id, o.code AS site, o.province_code
FROM gateway_status_history h
JOIN gateways g ON g.id = h.gateway_id
JOIN organisations o ON o.id = g.facility_id;

-- The latest reading of every sensor with its context: freshness of the pipeline per sensor.
CREATE VIEW grafana.sensor_latest AS
SELECT sl.sensor_id, s.code AS sensor, s.quantity, s.unit, s.tank_id, sl.ts, sl.value, sl.quality,
       sl.received_at, g.code AS gateway, o.id AS facility_id, o.code AS site, o.province_code
FROM sensor_latest sl
JOIN sensors s ON s.id = sl.sensor_id
JOIN gateways g ON g.id = s.gateway_id
JOIN organisations o ON o.id = g.facility_id;

-- Dead letters and quarantine without their payloads (engineers read those in the web UI).
CREATE VIEW grafana.dead_letters AS
SELECT id, received_at, topic, reason, payload_size FROM dead_letters;

CREATE VIEW grafana.quarantine AS
SELECT id, received_at, topic, site, gateway, sensor, ts, reason FROM quarantine;

-- The default privileges of 0012 cover these views when the same role migrates; say it anyway so
-- that a different migrating role cannot leave Grafana without access.
GRANT USAGE ON SCHEMA grafana TO oxy_grafana;
GRANT SELECT ON ALL TABLES IN SCHEMA grafana TO oxy_grafana;
