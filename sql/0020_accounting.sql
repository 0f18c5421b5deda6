-- Oxygen accounting: corrections overlay on raw readings, and per-tank report-window figures.
-- Raw readings are never touched: a correction marks a time range invalid or replaces the value
-- of the readings in it; reverting keeps the row (reverted_at) so the history stays auditable.
-- depends: 0002_readings

CREATE TABLE corrections (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id       bigint NOT NULL REFERENCES sensors (id),
    ts_from         timestamptz NOT NULL,
    ts_to           timestamptz NOT NULL,
    action          text NOT NULL CHECK (action IN ('invalidate', 'replace')),
    value           double precision,
    reason          text NOT NULL CHECK (length(btrim(reason)) > 0),
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    reverted_at     timestamptz,
    reverted_by     text,
    revert_reason   text,
    CHECK (ts_to >= ts_from),
    CHECK ((action = 'replace') = (value IS NOT NULL)),
    CHECK ((reverted_at IS NULL) = (reverted_by IS NULL))
);
CREATE INDEX corrections_sensor_idx ON corrections (sensor_id, ts_from) WHERE reverted_at IS NULL;

-- Per tank and report window (16:00 D-1 -> 16:00 D local): the accounting results, so that
-- provincial and national views read a few thousand rows instead of millions of readings.
-- A row is recomputed when it was computed before its window closed (plus a grace period for
-- late readings) or when a correction touching its window is made or reverted (rows deleted).
CREATE TABLE tank_windows (
    tank_id             bigint NOT NULL REFERENCES tanks (id) ON DELETE CASCADE,
    report_day          date NOT NULL,
    open_kg             double precision,
    close_kg            double precision,
    min_kg              double precision,
    consumption_kg      double precision,
    refilled_kg         double precision NOT NULL DEFAULT 0,
    refills             integer NOT NULL DEFAULT 0,
    coverage            double precision NOT NULL DEFAULT 0 CHECK (coverage BETWEEN 0 AND 1),
    readings            integer NOT NULL DEFAULT 0,
    computed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tank_id, report_day)
);
CREATE INDEX tank_windows_day_idx ON tank_windows (report_day);

-- Refill events found in the contents series (amount includes the draw during the refill).
CREATE TABLE refill_events (
    tank_id         bigint NOT NULL REFERENCES tanks (id) ON DELETE CASCADE,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz NOT NULL,
    report_day      date NOT NULL,
    before_kg       double precision NOT NULL,
    after_kg        double precision NOT NULL,
    amount_kg       double precision NOT NULL CHECK (amount_kg >= 0),
    PRIMARY KEY (tank_id, started_at)
);
CREATE INDEX refill_events_day_idx ON refill_events (report_day);
