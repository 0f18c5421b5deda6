-- Grafana's read-only access: role `oxy_grafana`, NOLOGIN until an operator runs
-- `oxy api grafana-role` (password from the environment), SELECT only on the views in schema
-- `grafana` (telemetry and rollups). Province-scoped users use the web UI, not Grafana.
-- depends: 0011_audit

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'oxy_grafana') THEN
        CREATE ROLE oxy_grafana NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

CREATE SCHEMA grafana;
COMMENT ON SCHEMA grafana IS 'Read-only views for Grafana (role oxy_grafana); telemetry and rollups only';

-- Telemetry with its registry context, never accounts, reports or the audit trail.
CREATE VIEW grafana.readings AS
SELECT r.ts, r.value, r.quality, r.received_at,
       s.id AS sensor_id, s.code AS sensor, s.quantity, s.unit,
       s.tank_id, g.code AS gateway, o.code AS site, o.id AS facility_id
FROM readings r
JOIN sensors s ON s.id = r.sensor_id
JOIN gateways g ON g.id = s.gateway_id
JOIN organisations o ON o.id = g.facility_id;

CREATE VIEW grafana.sensors AS
SELECT s.id AS sensor_id, s.code AS sensor, s.quantity, s.unit, s.tank_id,
       g.code AS gateway, g.revoked_at AS gateway_revoked_at,
       o.code AS site, o.name AS facility, o.province_code
FROM sensors s
JOIN gateways g ON g.id = s.gateway_id
JOIN organisations o ON o.id = g.facility_id;

CREATE VIEW grafana.tanks AS
SELECT t.id AS tank_id, t.code AS tank, t.name, t.capacity_kg, t.min_usable_kg,
       o.id AS facility_id, o.code AS site, o.name AS facility, o.province_code
FROM tanks t
JOIN organisations o ON o.id = t.facility_id;

REVOKE ALL ON SCHEMA grafana FROM PUBLIC;
GRANT USAGE ON SCHEMA grafana TO oxy_grafana;
GRANT SELECT ON ALL TABLES IN SCHEMA grafana TO oxy_grafana;
-- Rollup views other migrations add to schema `grafana` are readable too.
ALTER DEFAULT PRIVILEGES IN SCHEMA grafana GRANT SELECT ON TABLES TO oxy_grafana;
