-- Alerts: one open alert per (rule, subject), a lifecycle with events, per-user subscriptions
-- and a notification outbox that sends each event to each target once (retries, dead letters).
-- depends: 0010_accounts

CREATE TABLE alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule            text NOT NULL,
    subject_kind    text NOT NULL CHECK (subject_kind IN ('facility', 'tank', 'sensor', 'gateway', 'delivery')),
    subject_id      bigint NOT NULL,
    facility_id     bigint NOT NULL REFERENCES organisations (id),
    severity        text NOT NULL CHECK (severity IN ('critical', 'warning')),
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    level           smallint NOT NULL DEFAULT 0 CHECK (level BETWEEN 0 AND 2),  -- 0 facility, 1 SYT, 2 BYT
    opened_at       timestamptz NOT NULL,
    last_true_at    timestamptz NOT NULL,     -- last evaluation in which the condition held
    cleared_since   timestamptz,              -- condition absent since (flapping suppression)
    flaps           integer NOT NULL DEFAULT 0,
    acknowledged_by bigint REFERENCES users (id),
    acknowledged_at timestamptz,
    resolved_at     timestamptz,
    resolved_by     bigint REFERENCES users (id),
    resolution_note text,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb
);
-- Deduplication: at most one unresolved alert per condition and subject.
CREATE UNIQUE INDEX alerts_one_open ON alerts (rule, subject_kind, subject_id) WHERE state <> 'resolved';
CREATE INDEX alerts_facility_idx ON alerts (facility_id, state);

CREATE TABLE alert_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alerts (id),
    at          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('opened', 'acknowledged', 'escalated', 'resolved')),
    level       smallint NOT NULL,
    actor_id    bigint REFERENCES users (id),
    note        text
);
CREATE INDEX alert_events_alert_idx ON alert_events (alert_id, at);

-- Who hears about what, through which channel. Quiet hours never hold back critical alerts.
CREATE TABLE alert_subscriptions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel       text NOT NULL CHECK (channel IN ('email', 'webhook')),
    target        text NOT NULL CHECK (length(target) BETWEEN 3 AND 2000),
    min_severity  text NOT NULL DEFAULT 'warning' CHECK (min_severity IN ('critical', 'warning')),
    quiet_start   smallint CHECK (quiet_start BETWEEN 0 AND 23),
    quiet_end     smallint CHECK (quiet_end BETWEEN 0 AND 23),
    enabled       boolean NOT NULL DEFAULT true,
    UNIQUE (user_id, channel, target)
);

-- The outbox: one row per (event, channel, target), so an alert transition is never sent twice.
CREATE TABLE alert_notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        bigint NOT NULL REFERENCES alert_events (id),
    channel         text NOT NULL,
    target          text NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    sent_at         timestamptz,
    UNIQUE (event_id, channel, target)
);
CREATE INDEX alert_notifications_due_idx ON alert_notifications (next_attempt_at) WHERE state = 'pending';
