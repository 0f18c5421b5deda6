-- No single message can stop ingest (issue 14): delivery counts for poison pills, retained data
-- dead-lettered once, and no non-finite value in readings or sensor_latest.
-- depends: 0060_rollup_queue

-- Redelivered messages (the broker's DUP flag) that have not been committed yet: how many times
-- each was delivered since the first. A worker that dies holding a message leaves its count
-- here; once a message has crashed `OXY_INGEST_POISON_AFTER` workers it is dead-lettered as a
-- poison pill. A commit deletes the count, so the table holds only messages in trouble.
CREATE TABLE ingest_attempts (
    key         bytea PRIMARY KEY,             -- blake2b-128 of topic, NUL, payload
    topic       text NOT NULL,
    attempts    integer NOT NULL DEFAULT 1,
    first_at    timestamptz NOT NULL DEFAULT now(),
    last_at     timestamptz NOT NULL DEFAULT now()
);

-- A retained data message comes back on every fresh subscription: its dead letter is written
-- once (ingest looks for the same topic, reason and payload first).
CREATE INDEX dead_letters_topic_idx ON dead_letters (topic, reason);

-- Values that got in before the contract checked them after unit conversion (1.7e308 MPa is
-- infinite in bar): kept as dead letters with their row, removed from the live tables.
INSERT INTO dead_letters (received_at, topic, payload, payload_size, reason)
SELECT r.received_at, 'readings', convert_to(t.row_text, 'UTF8'),
       octet_length(convert_to(t.row_text, 'UTF8')),
       'non-finite value removed from readings by migration 0070 (issue 14)'
FROM readings r
CROSS JOIN LATERAL (
    SELECT format('{"sensor_id": %s, "ts": "%s", "value": "%s", "quality": %s}',
                  r.sensor_id, r.ts, r.value, r.quality) AS row_text
) t
WHERE r.value IN ('Infinity'::float8, '-Infinity'::float8, 'NaN'::float8);
DELETE FROM readings WHERE value IN ('Infinity'::float8, '-Infinity'::float8, 'NaN'::float8);
UPDATE sensor_latest SET value = NULL, quality = 2
WHERE value IN ('Infinity'::float8, '-Infinity'::float8, 'NaN'::float8);

-- The database's own guard: the ingest resolver dead-letters such values first, so the fast
-- COPY path never meets this check; if something else tries, the COPY fails as a whole, the
-- writer falls back to message-by-message and dead-letters the one refused (as for any
-- constraint). NaN sorts above +Infinity in PostgreSQL, so the two comparisons exclude all three.
ALTER TABLE readings ADD CONSTRAINT readings_value_finite
    CHECK (value > '-Infinity'::float8 AND value < 'Infinity'::float8);
ALTER TABLE sensor_latest ADD CONSTRAINT sensor_latest_value_finite
    CHECK (value > '-Infinity'::float8 AND value < 'Infinity'::float8);
