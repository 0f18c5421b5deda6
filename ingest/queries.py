"""Named SQL of the ingest service (values always travel as parameters)."""

from __future__ import annotations

from typing import Final

REGISTRY: Final = """
SELECT g.id, g.code, o.code, g.revoked_at IS NOT NULL, s.id, s.code, s.quantity, s.unit,
       s.valid_min, s.valid_max
FROM gateways g
JOIN organisations o ON o.id = g.facility_id
LEFT JOIN sensors s ON s.gateway_id = g.id
"""

# Changes when gateways or sensors are added (identity ids only grow): checked on a cache miss.
REGISTRY_SIGNATURE: Final = """
SELECT (SELECT max(id) FROM gateways), (SELECT max(id) FROM sensors)
"""

STORAGE_KIND: Final = "SELECT value FROM platform_meta WHERE key = 'storage'"

# Per-connection staging table; ON COMMIT DELETE ROWS empties it at every commit for free.
CREATE_STAGE: Final = """
CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
    sensor_id bigint, ts timestamptz, value double precision, quality smallint,
    received_at timestamptz, src integer
) ON COMMIT DELETE ROWS
"""
STAGE_COLUMNS: Final = ("int8", "timestamptz", "float8", "int2", "timestamptz", "int4")
COPY_STAGE: Final = (
    "COPY ingest_stage (sensor_id, ts, value, quality, received_at, src) FROM STDIN (FORMAT BINARY)"
)
UNNEST_STAGE: Final = """
INSERT INTO ingest_stage (sensor_id, ts, value, quality, received_at, src)
SELECT * FROM unnest(%s::int8[], %s::timestamptz[], %s::float8[], %s::int2[],
                     %s::timestamptz[], %s::int4[])
"""

# The fast path, tried first under a savepoint: nearly every batch holds only new readings, so
# its rows are COPied straight into readings (the database's own limit, no staging). A unique
# violation (a redelivery, a replay, a conflict) rolls back to the savepoint and the batch
# takes the safe path below. Latest values and dirty rollup ranges were computed by the resolver.
COPY_READINGS: Final = (
    "COPY readings (sensor_id, ts, value, quality, received_at) FROM STDIN (FORMAT BINARY)"
)
READING_COLUMNS: Final = STAGE_COLUMNS[:5]
UNNEST_READINGS: Final = """
INSERT INTO readings (sensor_id, ts, value, quality, received_at)
SELECT * FROM unnest(%s::int8[], %s::timestamptz[], %s::float8[], %s::int2[], %s::timestamptz[])
"""
UPSERT_LATEST: Final = """
INSERT INTO sensor_latest AS l (sensor_id, ts, value, quality, received_at)
SELECT * FROM unnest(%s::int8[], %s::timestamptz[], %s::float8[], %s::int2[], %s::timestamptz[])
ON CONFLICT (sensor_id) DO UPDATE
    SET ts = EXCLUDED.ts, value = EXCLUDED.value, quality = EXCLUDED.quality,
        received_at = EXCLUDED.received_at
    WHERE EXCLUDED.ts > l.ts
"""
# Plain PostgreSQL: the ranges whose rollup buckets rollup_flush() rebuilds (0060_rollup_queue).
QUEUE_DIRTY: Final = """
INSERT INTO rollup_dirty (sensor_id, lo, hi)
SELECT * FROM unnest(%s::int8[], %s::timestamptz[], %s::timestamptz[])
"""
FLUSH_ROLLUPS: Final = "SELECT rollup_flush(%s)"
FLUSH_PENDING: Final = "SELECT rollup_flush_pending()"

# The safe path: the batch staged (with each row's message, for the conflict record), then
# INSERT ... ON CONFLICT DO NOTHING RETURNING, so only the rows really inserted reach
# sensor_latest and the rollup queue: duplicates never count twice.
_SAFE_HEAD: Final = """
WITH new AS (
    INSERT INTO readings (sensor_id, ts, value, quality, received_at)
    SELECT sensor_id, ts, value, quality, received_at FROM ingest_stage
    ON CONFLICT (sensor_id, ts) DO NOTHING
    RETURNING sensor_id, ts, value, quality, received_at
),
latest AS (
    INSERT INTO sensor_latest AS l (sensor_id, ts, value, quality, received_at)
    SELECT DISTINCT ON (sensor_id) sensor_id, ts, value, quality, received_at
    FROM new ORDER BY sensor_id, ts DESC
    ON CONFLICT (sensor_id) DO UPDATE
        SET ts = EXCLUDED.ts, value = EXCLUDED.value, quality = EXCLUDED.quality,
            received_at = EXCLUDED.received_at
        WHERE EXCLUDED.ts > l.ts
)
"""
_SAFE_QUEUE: Final = """
, queued AS (
    INSERT INTO rollup_dirty (sensor_id, lo, hi)
    SELECT sensor_id, min(ts), max(ts) FROM new
    GROUP BY sensor_id, date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00')
)
"""
_COUNT: Final = "SELECT count(*) FROM new"

MERGE_SAFE_TIMESCALE: Final = _SAFE_HEAD + _COUNT
MERGE_SAFE_POSTGRES: Final = _SAFE_HEAD + _SAFE_QUEUE + _COUNT

# Run only when fewer rows were inserted than staged: a staged row whose stored twin differs
# (value or quality) is a conflict; an identical one is a harmless redelivery.
RECORD_CONFLICTS: Final = """
INSERT INTO reading_conflicts (sensor_id, ts, stored_value, stored_quality, new_value,
                               new_quality, topic, received_at)
SELECT s.sensor_id, s.ts, r.value, r.quality, s.value, s.quality, t.topic, s.received_at
FROM ingest_stage s
JOIN readings r ON r.sensor_id = s.sensor_id AND r.ts = s.ts
JOIN unnest(%s::text[]) WITH ORDINALITY AS t (topic, i) ON t.i = s.src
WHERE r.value IS DISTINCT FROM s.value OR r.quality <> s.quality
ON CONFLICT DO NOTHING
"""

INSERT_DEAD_LETTER: Final = """
INSERT INTO dead_letters (received_at, topic, payload, payload_size, reason)
VALUES (%s, %s, %s, %s, %s)
"""

# A retained data message comes back on every fresh subscription: one dead letter is enough.
INSERT_DEAD_LETTER_ONCE: Final = """
INSERT INTO dead_letters (received_at, topic, payload, payload_size, reason)
SELECT %(at)s, %(topic)s, %(payload)s, %(size)s, %(reason)s
WHERE NOT EXISTS (
    SELECT 1 FROM dead_letters
    WHERE topic = %(topic)s AND reason = %(reason)s AND payload = %(payload)s
)
"""

INSERT_QUARANTINE: Final = """
INSERT INTO quarantine (received_at, topic, site, gateway, sensor, ts, value, unit, quality,
                        reason, payload)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)
ON CONFLICT DO NOTHING
"""

# Any message from a gateway: it is alive as far as ingest can tell.
TOUCH_GATEWAY: Final = """
INSERT INTO gateway_status AS g (gateway_id, last_seen, last_data_seq)
VALUES (%s, %s, %s)
ON CONFLICT (gateway_id) DO UPDATE SET
    last_seen = GREATEST(g.last_seen, EXCLUDED.last_seen),
    last_data_seq = COALESCE(GREATEST(g.last_data_seq, EXCLUDED.last_data_seq), g.last_data_seq)
"""

# Birth always applies; a death (the Will) only for the session it belongs to (Sparkplug's
# bd_seq rule), so a late Will of an old session does not mark a live gateway offline.
APPLY_STATE: Final = """
INSERT INTO gateway_status AS g (gateway_id, last_seen, online, bd_seq, version, config_hash,
                                 state_at)
VALUES (%(gw)s, %(at)s, %(online)s, %(bd_seq)s, %(version)s, %(config_hash)s, %(at)s)
ON CONFLICT (gateway_id) DO UPDATE SET
    last_seen = GREATEST(g.last_seen, EXCLUDED.last_seen),
    online = CASE WHEN EXCLUDED.online THEN true
                  WHEN g.bd_seq IS NULL OR g.bd_seq = EXCLUDED.bd_seq THEN false
                  ELSE g.online END,
    bd_seq = CASE WHEN EXCLUDED.online THEN EXCLUDED.bd_seq
                  ELSE COALESCE(g.bd_seq, EXCLUDED.bd_seq) END,
    version = CASE WHEN EXCLUDED.online THEN EXCLUDED.version ELSE g.version END,
    config_hash = CASE WHEN EXCLUDED.online THEN EXCLUDED.config_hash ELSE g.config_hash END,
    state_at = EXCLUDED.state_at
"""

APPLY_STATUS: Final = """
UPDATE gateway_status SET
    status_ts = %(ts)s, outbox_depth = %(outbox_depth)s, outbox_oldest = %(outbox_oldest)s,
    evicted_total = %(evicted_total)s, published_total = %(published_total)s,
    devices = %(devices)s::jsonb, alarms = %(alarms)s::jsonb
WHERE gateway_id = %(gw)s AND (status_ts IS NULL OR status_ts <= %(ts)s)
"""

INSERT_HISTORY: Final = """
INSERT INTO gateway_status_history (gateway_id, received_at, kind, online, bd_seq,
                                    outbox_depth, evicted_total, payload)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)
ON CONFLICT DO NOTHING
"""

RECOMPUTE: Final = "SELECT rollup_recompute(%s, %s, %s)"
REFRESH_CAGG: Final = "CALL refresh_continuous_aggregate(%s::regclass, %s, %s)"
RETENTION: Final = "SELECT apply_readings_retention()"

# Deliveries of redelivered messages without a commit (0070_ingest_attempts): returns this
# delivery's count; deleted once the message is committed.
COUNT_ATTEMPT: Final = """
INSERT INTO ingest_attempts AS a (key, topic)
SELECT * FROM unnest(%s::bytea[], %s::text[])
ON CONFLICT (key) DO UPDATE SET attempts = a.attempts + 1, last_at = now()
RETURNING key, attempts - 1
"""
FORGET_ATTEMPTS: Final = "DELETE FROM ingest_attempts WHERE key = ANY(%s)"

# End-to-end acknowledgement (sql/0075): record the batch's handled data seqs per stream and
# return each stream's watermark, in the batch's own transaction.
ACK_ADVANCE: Final = """
SELECT site, gateway, epoch, watermark, high
FROM ack_advance(%s::text[], %s::text[], %s::int8[], %s::int8[], %s::int8[], %s::int8[])
"""

# Contract v2 births (sql/0135): one row per (gateway, schema); a repeat only moves last_seen.
BIRTH: Final = "SELECT sensors FROM gateway_births WHERE gateway_id = %s AND schema = %s"

STORE_BIRTH: Final = """
INSERT INTO gateway_births AS b (gateway_id, schema, sensors, first_seen, last_seen)
VALUES (%s, %s, %s::jsonb, %s, %s)
ON CONFLICT (gateway_id, schema) DO UPDATE SET last_seen = GREATEST(b.last_seen, EXCLUDED.last_seen)
"""
