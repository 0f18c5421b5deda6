-- A calibration change recomputes the stored report windows it affects: inserting, changing or
-- deleting a calibration version (or its points) drops the tank's stored windows and refill
-- events from the day before the version's valid_from on (UTC date − 1 covers the 16:00
-- Asia/Ho_Chi_Minh cut-off and the refill context); the accounting recomputes them on the next
-- read. Whatever path makes the change (registry import, admin form, SQL), history follows.
-- depends: 0022_window_fingerprint

CREATE FUNCTION calibration_changed_drop_windows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t bigint;
    since timestamptz;
BEGIN
    IF TG_TABLE_NAME = 'tank_calibrations' THEN
        IF TG_OP = 'DELETE' THEN
            t := OLD.tank_id; since := OLD.valid_from;
        ELSIF TG_OP = 'UPDATE' THEN
            t := NEW.tank_id; since := least(OLD.valid_from, NEW.valid_from);
        ELSE
            t := NEW.tank_id; since := NEW.valid_from;
        END IF;
    ELSE
        SELECT k.tank_id, k.valid_from INTO t, since FROM tank_calibrations k
        WHERE k.id = CASE WHEN TG_OP = 'DELETE' THEN OLD.calibration_id
                          ELSE NEW.calibration_id END;
        IF t IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    DELETE FROM tank_windows
    WHERE tank_id = t AND report_day >= (since AT TIME ZONE 'UTC')::date - 1;
    DELETE FROM refill_events
    WHERE tank_id = t AND report_day >= (since AT TIME ZONE 'UTC')::date - 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER tank_calibrations_drop_windows
    AFTER INSERT OR UPDATE OR DELETE ON tank_calibrations
    FOR EACH ROW EXECUTE FUNCTION calibration_changed_drop_windows();

CREATE TRIGGER calibration_points_drop_windows
    AFTER INSERT OR UPDATE OR DELETE ON calibration_points
    FOR EACH ROW EXECUTE FUNCTION calibration_changed_drop_windows();
