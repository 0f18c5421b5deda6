-- MQTT credentials: one account per gateway (publishes only under its own topic prefix) and
-- service accounts (ingest reads everything, a bridge publishes for foreign devices). Only the
-- Mosquitto password hash is stored; the files the broker reads are rendered from this table.
-- depends: 0011_audit

CREATE TABLE mqtt_accounts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    kind            text NOT NULL CHECK (kind IN ('gateway', 'ingest', 'bridge')),
    gateway_id      bigint UNIQUE REFERENCES gateways (id),
    password_hash   text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    rotated_at      timestamptz,
    revoked_at      timestamptz,
    CHECK ((kind = 'gateway') = (gateway_id IS NOT NULL))
);
