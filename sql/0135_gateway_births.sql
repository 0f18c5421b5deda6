-- Contract v2 (docs/gateway.md, "Contract v2"): the sensor declarations a gateway's birth
-- carries, one row per (gateway, schema). A v2 data message names its schema and carries sensor
-- indices into that declaration; ingest resolves them against the row stored here, so any
-- worker, after any restart, can read any v2 message whose birth it once committed. A schema's
-- declaration never changes (the schema is a hash of it): reconfiguring a gateway adds a row,
-- and data of the old schema still waiting in its outbox resolves against the old row.
-- depends: 0116_quality_code

CREATE TABLE gateway_births (
    gateway_id  bigint NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    schema      bigint NOT NULL CHECK (schema >= 0 AND schema < 4294967296),
    sensors     jsonb NOT NULL CHECK (jsonb_typeof(sensors) = 'array'),
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    PRIMARY KEY (gateway_id, schema)
);

COMMENT ON TABLE gateway_births IS
    'Sensor declarations of contract v2 births: index i of a v2 data message of this schema is sensors[i] ({code, unit, res})';
