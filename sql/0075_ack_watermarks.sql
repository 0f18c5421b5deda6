-- End-to-end acknowledgement (docs/ingest.md): per gateway outbox stream (site, gateway, epoch),
-- the data `seq` numbers ingest has committed, and the highest contiguous one (the watermark)
-- that ingest publishes back to the gateway on oxy/v1/<site>/<gateway>/data/ack.
--
-- The ingest writer calls ack_advance() as the last statement of every batch transaction that
-- holds data messages carrying an epoch, so a seq is recorded if and only if its readings are
-- committed. The stream row is locked first (one row per gateway stream, locked in key order:
-- no deadlock between workers); under READ COMMITTED every later statement of the function sees
-- what other workers committed before the lock was granted, so when batches of one gateway
-- commit out of order across workers of a shared subscription, the last to commit computes the
-- watermark over all of them. Ranges at or below the watermark are deleted (the table stays
-- small); `high` is the highest seq ever committed (high > watermark: a gap to re-send).
-- depends: 0003_ingest

CREATE TABLE ack_streams (
    site text NOT NULL,
    gateway text NOT NULL,
    epoch bigint NOT NULL,
    floor bigint NOT NULL DEFAULT 0,
    watermark bigint NOT NULL,
    high bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, gateway, epoch)
);

CREATE TABLE ack_ranges (
    site text NOT NULL,
    gateway text NOT NULL,
    epoch bigint NOT NULL,
    lo bigint NOT NULL,
    hi bigint NOT NULL,
    CHECK (lo <= hi),
    PRIMARY KEY (site, gateway, epoch, lo, hi)
);

COMMENT ON TABLE ack_streams IS
    'Per gateway outbox stream: the highest contiguous committed data seq (end-to-end ack).';
COMMENT ON TABLE ack_ranges IS
    'Committed data seq ranges above the watermark of their stream (gaps still open).';

CREATE FUNCTION ack_advance(
    p_site text[], p_gateway text[], p_epoch bigint[], p_lo bigint[], p_hi bigint[],
    p_floor bigint[]
) RETURNS TABLE (site text, gateway text, epoch bigint, watermark bigint, high bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    k record;
    w bigint;
    f bigint;
    h bigint;
    nh bigint;
BEGIN
    FOR k IN
        SELECT u.s, u.g, u.e, max(u.f) AS f, max(u.hi) AS hi
        FROM unnest(p_site, p_gateway, p_epoch, p_hi, p_floor) AS u (s, g, e, hi, f)
        GROUP BY u.s, u.g, u.e
        ORDER BY u.s, u.g, u.e
    LOOP
        -- The row lock serialises the watermark of one stream across workers.
        INSERT INTO ack_streams AS a (site, gateway, epoch, floor, watermark, high)
        VALUES (k.s, k.g, k.e, coalesce(k.f, 0), coalesce(k.f, 0) - 1, k.hi)
        ON CONFLICT ON CONSTRAINT ack_streams_pkey DO UPDATE SET
            floor = GREATEST(a.floor, EXCLUDED.floor),
            high = GREATEST(a.high, EXCLUDED.high),
            updated_at = now()
        RETURNING a.floor, a.watermark, a.high INTO f, w, h;
        INSERT INTO ack_ranges AS r (site, gateway, epoch, lo, hi)
        SELECT u.s, u.g, u.e, u.lo, u.hi
        FROM unnest(p_site, p_gateway, p_epoch, p_lo, p_hi) AS u (s, g, e, lo, hi)
        WHERE u.s = k.s AND u.g = k.g AND u.e = k.e
        ON CONFLICT DO NOTHING;
        w := GREATEST(w, f - 1);
        LOOP
            SELECT max(r.hi) INTO nh FROM ack_ranges r
            WHERE r.site = k.s AND r.gateway = k.g AND r.epoch = k.e
              AND r.lo <= w + 1 AND r.hi > w;
            EXIT WHEN nh IS NULL;
            w := nh;
        END LOOP;
        DELETE FROM ack_ranges r
        WHERE r.site = k.s AND r.gateway = k.g AND r.epoch = k.e AND r.hi <= w;
        UPDATE ack_streams a SET watermark = w
        WHERE a.site = k.s AND a.gateway = k.g AND a.epoch = k.e;
        site := k.s;
        gateway := k.g;
        epoch := k.e;
        watermark := w;
        high := GREATEST(h, w);
        RETURN NEXT;
    END LOOP;
END;
$$;
