-- Ingest bookkeeping: nothing is silently dropped (dead letters, quarantine, conflicts), gateway
-- state and status for the engineers' views, and the latest value of every sensor.
-- depends: 0002_readings

-- A message (or a reading inside one) that does not follow the wire contract, or breaks a rule
-- the broker ACL should already have enforced. The raw payload is kept, bounded in size.
CREATE TABLE dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    topic           text NOT NULL,
    payload         bytea NOT NULL,           -- the first bytes of the payload (see payload_size)
    payload_size    integer NOT NULL,         -- size of the whole payload in bytes
    reason          text NOT NULL
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at DESC);

-- Readings (or state/status messages) from gateways or sensors the registry does not know yet.
-- Kept, visible to engineers, replayable once the registry knows them; never discarded.
CREATE TABLE quarantine (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    topic           text NOT NULL,
    site            text NOT NULL,
    gateway         text NOT NULL,
    sensor          text,                     -- NULL for a state/status message
    ts              timestamptz,
    value           double precision,         -- as sent, in `unit`
    unit            text,
    quality         smallint,
    reason          text NOT NULL,
    payload         jsonb                     -- state/status messages only
);
CREATE INDEX quarantine_gateway_idx ON quarantine (gateway, sensor, ts);
-- Redelivery of the same reading must not pile up copies.
CREATE UNIQUE INDEX quarantine_reading_uq ON quarantine (gateway, sensor, ts) WHERE sensor IS NOT NULL;

-- A reading whose (sensor, time) is already stored with a different value or quality. The stored
-- reading stays (raw is immutable); the newcomer is kept here for an engineer to look at.
CREATE TABLE reading_conflicts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id       bigint NOT NULL REFERENCES sensors (id),
    ts              timestamptz NOT NULL,
    stored_value    double precision,
    stored_quality  smallint,
    new_value       double precision,
    new_quality     smallint NOT NULL,
    topic           text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
-- A redelivered conflicting message records its conflict once.
CREATE UNIQUE INDEX reading_conflicts_uq
    ON reading_conflicts (sensor_id, ts, new_quality, coalesce(new_value, 'NaN'::double precision));

-- The latest reading of every sensor: "latest value" is one index lookup, never a scan.
CREATE TABLE sensor_latest (
    sensor_id       bigint PRIMARY KEY REFERENCES sensors (id),
    ts              timestamptz NOT NULL,
    value           double precision,
    quality         smallint NOT NULL,
    received_at     timestamptz NOT NULL
);

-- Gateway birth/death (state topic) and health (status topic): the current picture ...
CREATE TABLE gateway_status (
    gateway_id      bigint PRIMARY KEY REFERENCES gateways (id),
    last_seen       timestamptz NOT NULL,      -- any message from it reached ingest
    online          boolean,                   -- from the retained birth / the MQTT Will
    bd_seq          bigint,                    -- birth/death sequence of the current session
    version         text,
    config_hash     text,
    state_at        timestamptz,               -- when the last state message was received
    status_ts       timestamptz,               -- `ts` of the last status message
    outbox_depth    integer,
    outbox_oldest   timestamptz,
    evicted_total   bigint,
    published_total bigint,
    devices         jsonb,
    alarms          jsonb,
    last_data_seq   bigint                     -- `seq` of the newest data message seen
);

-- ... and the history of every state/status message, for the engineers' timelines.
CREATE TABLE gateway_status_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway_id      bigint NOT NULL REFERENCES gateways (id),
    received_at     timestamptz NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('state', 'status')),
    online          boolean,
    bd_seq          bigint,
    outbox_depth    integer,
    evicted_total   bigint,
    payload         jsonb NOT NULL
);
CREATE INDEX gateway_status_history_idx ON gateway_status_history (gateway_id, received_at DESC);
-- A redelivered state/status message is recorded once.
CREATE UNIQUE INDEX gateway_status_history_uq
    ON gateway_status_history (gateway_id, kind, md5(payload::text));
