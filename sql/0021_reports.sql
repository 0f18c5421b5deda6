-- The reporting chain: facility daily reports (16:00), SYT reports to BYT, supplier reports.
-- Every report keeps every revision (number, author, time, full snapshot and diff).
-- Liquid figures are kg of LOX; gas figures are m3 at the declared reference (Nm3 by default).
-- depends: 0020_accounting

CREATE TABLE facility_reports (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    facility_id         bigint NOT NULL REFERENCES organisations (id),
    report_day          date NOT NULL,
    revision            integer NOT NULL DEFAULT 0,
    -- NULL until the 16:00 report is filed; a morning update alone does not count as reported.
    submitted_at        timestamptz,
    late                boolean NOT NULL DEFAULT false,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    updated_by          text,
    patients_current    integer CHECK (patients_current >= 0),
    patients_new        integer CHECK (patients_new >= 0),
    discharged_morning  integer CHECK (discharged_morning >= 0),
    discharged_evening  integer CHECK (discharged_evening >= 0),
    o2_mask             integer CHECK (o2_mask >= 0),
    o2_hfnc             integer CHECK (o2_hfnc >= 0),
    o2_niv              integer CHECK (o2_niv >= 0),
    o2_invasive         integer CHECK (o2_invasive >= 0),
    o2_ecmo             integer CHECK (o2_ecmo >= 0),
    -- Entered or overriding figures; NULL on a monitored facility means "from telemetry".
    refilled_liquid_kg  double precision CHECK (refilled_liquid_kg >= 0),
    refilled_gas_nm3    double precision CHECK (refilled_gas_nm3 >= 0),
    stock_liquid_kg     double precision CHECK (stock_liquid_kg >= 0),
    stock_gas_nm3       double precision CHECK (stock_gas_nm3 >= 0),
    capacity_nm3        double precision CHECK (capacity_nm3 >= 0),
    avg_need_nm3        double precision CHECK (avg_need_nm3 >= 0),
    notes               text,
    overrides           jsonb NOT NULL DEFAULT '{}'::jsonb,   -- field -> reason
    entered_units       jsonb NOT NULL DEFAULT '{}'::jsonb,   -- field -> unit typed by staff
    warnings            jsonb NOT NULL DEFAULT '[]'::jsonb,   -- implausible figures (median/MAD)
    UNIQUE (facility_id, report_day)
);
CREATE INDEX facility_reports_day_idx ON facility_reports (report_day, facility_id);

CREATE TABLE facility_report_revisions (
    report_id   bigint NOT NULL REFERENCES facility_reports (id) ON DELETE CASCADE,
    revision    integer NOT NULL,
    author      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL CHECK (kind IN ('morning', 'report', 'edit')),
    late        boolean NOT NULL DEFAULT false,
    snapshot    jsonb NOT NULL,
    diff        jsonb NOT NULL,
    PRIMARY KEY (report_id, revision)
);

CREATE TABLE syt_reports (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id              bigint NOT NULL REFERENCES organisations (id),
    report_day          date NOT NULL,
    state               text NOT NULL DEFAULT 'draft'
                        CHECK (state IN ('draft', 'sent', 'approved', 'sent_back')),
    revision            integer NOT NULL DEFAULT 0,
    notice              text,
    own_capacity_nm3    double precision CHECK (own_capacity_nm3 >= 0),
    own_capacity_entry  jsonb,    -- {"value": .., "unit": ..} as typed
    own_need_nm3        double precision CHECK (own_need_nm3 >= 0),
    own_need_entry      jsonb,
    filters             jsonb NOT NULL DEFAULT '{}'::jsonb,
    sent_at             timestamptz,
    sent_by             text,
    approved_at         timestamptz,
    approved_by         text,
    sent_back_at        timestamptz,
    sent_back_by        text,
    sent_back_reason    text,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, report_day)
);
CREATE INDEX syt_reports_day_idx ON syt_reports (report_day);

CREATE TABLE syt_report_revisions (
    report_id   bigint NOT NULL REFERENCES syt_reports (id) ON DELETE CASCADE,
    revision    integer NOT NULL,
    action      text NOT NULL CHECK (action IN ('save', 'send', 'approve', 'send_back')),
    author      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    snapshot    jsonb NOT NULL,
    diff        jsonb NOT NULL,
    note        text,
    PRIMARY KEY (report_id, revision)
);

CREATE TABLE supplier_reports (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    supplier_id         bigint NOT NULL REFERENCES organisations (id),
    report_day          date NOT NULL,
    revision            integer NOT NULL DEFAULT 0,
    production_t        double precision NOT NULL CHECK (production_t >= 0),
    capacity_normal_tpd double precision CHECK (capacity_normal_tpd >= 0),
    capacity_full_tpd   double precision CHECK (capacity_full_tpd >= 0),
    lox_stock_kg        double precision CHECK (lox_stock_kg >= 0),
    cylinders_filled    integer CHECK (cylinders_filled >= 0),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    updated_by          text,
    UNIQUE (supplier_id, report_day),
    CHECK (capacity_full_tpd IS NULL OR capacity_normal_tpd IS NULL
           OR capacity_full_tpd >= capacity_normal_tpd)
);

CREATE TABLE supplier_deliveries (
    report_id       bigint NOT NULL REFERENCES supplier_reports (id) ON DELETE CASCADE,
    facility_id     bigint NOT NULL REFERENCES organisations (id),
    liquid_kg       double precision NOT NULL DEFAULT 0 CHECK (liquid_kg >= 0),
    gas_nm3         double precision NOT NULL DEFAULT 0 CHECK (gas_nm3 >= 0),
    cylinders       integer NOT NULL DEFAULT 0 CHECK (cylinders >= 0),
    PRIMARY KEY (report_id, facility_id)
);
CREATE INDEX supplier_deliveries_facility_idx ON supplier_deliveries (facility_id);

CREATE TABLE supplier_report_revisions (
    report_id   bigint NOT NULL REFERENCES supplier_reports (id) ON DELETE CASCADE,
    revision    integer NOT NULL,
    author      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    snapshot    jsonb NOT NULL,
    diff        jsonb NOT NULL,
    PRIMARY KEY (report_id, revision)
);
