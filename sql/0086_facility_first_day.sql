-- A facility is expected to report from its first active day. When the registry (import or admin
-- form) leaves "active from" blank, that day is the facility's first day of data: its first
-- report or its tanks' first reading, else the day it is registered (today, Vietnam time). It
-- used to be 2000-01-01/2020-01-01, so a new facility counted as "not reported" (SYT field 8, and
-- an alert) for every day before it existed.
-- depends: 0021_reports

CREATE FUNCTION facility_first_day(p_org_id bigint) RETURNS date
LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $$
    SELECT coalesce(
        least(
            (SELECT min(report_day) FROM facility_reports WHERE facility_id = p_org_id),
            (SELECT (min(r.first_ts) AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
             FROM tanks t JOIN sensors s ON s.tank_id = t.id
             CROSS JOIN LATERAL (SELECT min(ts) AS first_ts FROM readings
                                 WHERE sensor_id = s.id) r
             WHERE t.facility_id = p_org_id)
        ),
        (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
    )
$$;

