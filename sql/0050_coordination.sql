-- Coordination (điều phối): support requests, assignments to suppliers, deliveries.
-- Quantities are stored as kg of LOX (gas and cylinders as their kg equivalent at the declared
-- reference) beside the figure exactly as typed, with its unit: nothing is ever guessed.
-- Suggested allocations are computed on demand and never stored: a proposal becomes an
-- assignment only when a person assigns it.
-- depends: 0021_reports

-- A facility (or an SYT on its behalf) asks for oxygen by a time.
CREATE TABLE support_requests (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    facility_id         bigint NOT NULL REFERENCES organisations (id),
    parent_id           bigint NOT NULL REFERENCES organisations (id),  -- handling SYT / office
    province_code       text REFERENCES admin_units (code),
    form                text NOT NULL CHECK (form IN ('liquid', 'gas', 'cylinders')),
    amount_value        double precision NOT NULL CHECK (amount_value > 0),
    amount_unit         text NOT NULL CHECK (amount_unit IN ('kg', 'm3_liquid', 'nm3', 'cylinders')),
    amount_kg           double precision NOT NULL CHECK (amount_kg > 0),
    needed_by           timestamptz NOT NULL,
    -- Days of supply when the request was made, and the urgency derived from it.
    days_of_supply      double precision,
    urgency             text NOT NULL CHECK (urgency IN ('critical', 'high', 'normal', 'unknown')),
    state               text NOT NULL DEFAULT 'open'
                        CHECK (state IN ('open', 'partly_assigned', 'assigned', 'fulfilled',
                                         'cancelled')),
    note                text CHECK (length(note) <= 2000),
    escalated_at        timestamptz,
    escalated_by        text,
    escalated_kg        double precision CHECK (escalated_kg >= 0),
    escalation_note     text CHECK (length(escalation_note) <= 2000),
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((escalated_at IS NULL) = (escalated_by IS NULL))
);
CREATE INDEX support_requests_facility_idx ON support_requests (facility_id, created_at DESC);
CREATE INDEX support_requests_parent_idx ON support_requests (parent_id, state);
CREATE INDEX support_requests_open_idx ON support_requests (state)
    WHERE state IN ('open', 'partly_assigned');

-- A request, in whole or in parts, assigned to a supplier or to a facility with surplus.
CREATE TABLE assignments (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id          bigint NOT NULL REFERENCES support_requests (id),
    source_id           bigint NOT NULL REFERENCES organisations (id),
    source_kind         text NOT NULL CHECK (source_kind IN ('supplier', 'facility')),
    amount_kg           double precision NOT NULL CHECK (amount_kg > 0),
    level               text NOT NULL CHECK (level IN ('province', 'national')),
    state               text NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'accepted', 'declined', 'cancelled',
                                         'dispatched', 'delivered')),
    from_suggestion     boolean NOT NULL DEFAULT false,
    note                text CHECK (length(note) <= 2000),
    assigned_by         text NOT NULL,
    assigned_at         timestamptz NOT NULL DEFAULT now(),
    responded_by        text,
    responded_at        timestamptz,
    decline_reason      text CHECK (length(decline_reason) <= 2000),
    CHECK (state <> 'declined' OR length(btrim(decline_reason)) > 0)
);
CREATE INDEX assignments_request_idx ON assignments (request_id);
CREATE INDEX assignments_source_idx ON assignments (source_id, state);

-- Oxygen on its way or arrived: from an assignment, or reported by a supplier (its daily
-- report's deliveries by recipient feed the same records), or both once linked.
CREATE TABLE deliveries (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    assignment_id       bigint REFERENCES assignments (id),
    supplier_report_id  bigint REFERENCES supplier_reports (id) ON DELETE SET NULL,
    report_day          date,                   -- the supplier report's day, if any
    source_id           bigint NOT NULL REFERENCES organisations (id),
    facility_id         bigint NOT NULL REFERENCES organisations (id),
    form                text NOT NULL CHECK (form IN ('liquid', 'gas', 'cylinders')),
    amount_kg           double precision NOT NULL CHECK (amount_kg >= 0),
    gas_nm3             double precision NOT NULL DEFAULT 0 CHECK (gas_nm3 >= 0),
    cylinders           integer NOT NULL DEFAULT 0 CHECK (cylinders >= 0),
    state               text NOT NULL
                        CHECK (state IN ('dispatched', 'in_transit', 'delivered', 'confirmed')),
    dispatched_at       timestamptz,
    in_transit_at       timestamptz,
    delivered_at        timestamptz,
    confirmed_at        timestamptz,
    confirmed_by        text,
    received_kg         double precision CHECK (received_kg >= 0),  -- as the facility counted
    -- When the refill can show in the facility's telemetry.
    expected_from       timestamptz,
    expected_to         timestamptz,
    match_state         text NOT NULL DEFAULT 'pending'
                        CHECK (match_state IN ('pending', 'matched', 'mismatch', 'no_telemetry',
                                               'not_applicable')),
    matched_kg          double precision,
    matched_refills     jsonb NOT NULL DEFAULT '[]'::jsonb,   -- [{tank_id, started_at, kg}]
    match_note          text,
    matched_at          timestamptz,
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (assignment_id IS NOT NULL OR supplier_report_id IS NOT NULL OR report_day IS NOT NULL)
);
CREATE UNIQUE INDEX deliveries_report_line_idx ON deliveries (supplier_report_id, facility_id)
    WHERE supplier_report_id IS NOT NULL;
CREATE UNIQUE INDEX deliveries_assignment_idx ON deliveries (assignment_id)
    WHERE assignment_id IS NOT NULL;
CREATE INDEX deliveries_facility_idx ON deliveries (facility_id, state);
CREATE INDEX deliveries_source_idx ON deliveries (source_id, state);
