-- ack_advance() (sql/0075) walked the watermark up one committed range per loop step, each step
-- an index scan of the stream's ranges from the bottom: quadratic when two ingest workers share
-- a subscription and every batch holds every other seq (400 single-seq ranges per batch of
-- 20,000 readings: 0.6 s per call, up to 2.6 s, under the stream's row lock). The watermark is
-- now found in one statement: the ranges above it in order of `lo`, each compared with the
-- highest `hi` before it; the first that leaves a gap ends the contiguous run. Same signature,
-- same result (tests/ingest/test_end_to_end_ack.py, docs/ingest.md "Figures").
-- depends: 0075_ack_watermarks

CREATE OR REPLACE FUNCTION ack_advance(
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
        w := GREATEST(w, f - 1);
        -- This batch's ranges, merged with the stream's open ones and the watermark in one pass.
        WITH mine AS (
            SELECT u.lo, u.hi
            FROM unnest(p_site, p_gateway, p_epoch, p_lo, p_hi) AS u (s, g, e, lo, hi)
            WHERE u.s = k.s AND u.g = k.g AND u.e = k.e AND u.hi > w
        ), ranges AS (
            SELECT r.lo, r.hi FROM ack_ranges r
            WHERE r.site = k.s AND r.gateway = k.g AND r.epoch = k.e AND r.hi > w
            UNION ALL
            SELECT mine.lo, mine.hi FROM mine
        ), ordered AS (
            SELECT o.lo, o.hi,
                   max(o.hi) OVER (ORDER BY o.lo, o.hi
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
            FROM ranges o
        ), gap AS (
            SELECT min(o.lo) AS lo FROM ordered o WHERE o.lo > GREATEST(o.before, w) + 1
        )
        SELECT max(o.hi) INTO nh FROM ordered o, gap g WHERE g.lo IS NULL OR o.lo < g.lo;
        w := GREATEST(w, nh);
        -- Keep only what stays above the new watermark.
        INSERT INTO ack_ranges AS r (site, gateway, epoch, lo, hi)
        SELECT u.s, u.g, u.e, u.lo, u.hi
        FROM unnest(p_site, p_gateway, p_epoch, p_lo, p_hi) AS u (s, g, e, lo, hi)
        WHERE u.s = k.s AND u.g = k.g AND u.e = k.e AND u.hi > w
        ON CONFLICT DO NOTHING;
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
