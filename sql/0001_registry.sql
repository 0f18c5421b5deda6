-- Registry: administrative units, organisations, contacts, assets, devices.
-- Administrative units are data (loaded by `oxy db migrate` from oxy/data/*.csv), never code.

CREATE TABLE admin_units (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{2}$'),
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('city', 'province')),
    valid_from  date NOT NULL DEFAULT DATE '2025-07-01'
);

-- The 63 pre-2025 provinces and the 2025 unit each was merged into.
CREATE TABLE legacy_admin_units (
    old_code    text PRIMARY KEY CHECK (old_code ~ '^[0-9]{2}$'),
    old_name    text NOT NULL,
    new_code    text NOT NULL REFERENCES admin_units (code)
);

-- Every organisation: the Ministry (BYT), provincial departments (SYT), other ministries'
-- health offices, facilities (CSYT) and suppliers. `parent_id` is the reporting parent.
CREATE TABLE organisations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    kind            text NOT NULL CHECK (kind IN ('ministry', 'syt', 'ministry_office', 'facility', 'supplier')),
    name            text NOT NULL,
    province_code   text REFERENCES admin_units (code),
    parent_id       bigint REFERENCES organisations (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'ministry' OR kind = 'supplier' OR parent_id IS NOT NULL),
    CHECK (kind <> 'syt' OR province_code IS NOT NULL)
);
CREATE INDEX organisations_parent_idx ON organisations (parent_id);
CREATE INDEX organisations_province_idx ON organisations (province_code);

CREATE TABLE facilities (
    org_id          bigint PRIMARY KEY REFERENCES organisations (id) ON DELETE CASCADE,
    facility_type   text NOT NULL DEFAULT 'hospital'
                    CHECK (facility_type IN ('hospital', 'field_hospital', 'treatment_centre', 'clinic', 'other')),
    address         text,
    latitude        double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude       double precision CHECK (longitude BETWEEN -180 AND 180),
    beds            integer CHECK (beds >= 0),
    icu_beds        integer CHECK (icu_beds >= 0),
    active_from     date NOT NULL DEFAULT DATE '2020-01-01',
    active_to       date,
    CHECK (active_to IS NULL OR active_to >= active_from),
    CHECK (icu_beds IS NULL OR beds IS NULL OR icu_beds <= beds)
);

CREATE TABLE suppliers (
    org_id              bigint PRIMARY KEY REFERENCES organisations (id) ON DELETE CASCADE,
    supplier_kind       text NOT NULL CHECK (supplier_kind IN ('producer', 'filling_station', 'distributor')),
    address             text,
    latitude            double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude           double precision CHECK (longitude BETWEEN -180 AND 180),
    capacity_normal_tpd numeric(10, 3) CHECK (capacity_normal_tpd >= 0),
    capacity_full_tpd   numeric(10, 3) CHECK (capacity_full_tpd >= 0)
);

CREATE TABLE contacts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    full_name   text NOT NULL,
    role        text,
    phone       text,
    email       text,
    is_primary  boolean NOT NULL DEFAULT false
);
CREATE INDEX contacts_org_idx ON contacts (org_id);

-- Liquid-oxygen tanks. Contents are kg of LOX; gas figures are derived at the reference.
CREATE TABLE tanks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    facility_id     bigint NOT NULL REFERENCES organisations (id),
    code            text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name            text NOT NULL,
    capacity_kg     double precision NOT NULL CHECK (capacity_kg > 0),
    orientation     text NOT NULL DEFAULT 'vertical' CHECK (orientation IN ('vertical', 'horizontal')),
    diameter_m      double precision CHECK (diameter_m > 0),
    height_m        double precision CHECK (height_m > 0),
    min_usable_kg   double precision NOT NULL DEFAULT 0 CHECK (min_usable_kg >= 0),
    max_pressure_bar double precision CHECK (max_pressure_bar > 0),
    installed_on    date,
    UNIQUE (facility_id, code),
    CHECK (min_usable_kg < capacity_kg)
);

-- Versioned strapping tables: differential pressure (inH2O) -> contents (kg LOX).
CREATE TABLE tank_calibrations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tank_id     bigint NOT NULL REFERENCES tanks (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version >= 1),
    valid_from  timestamptz NOT NULL,
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tank_id, version),
    UNIQUE (tank_id, valid_from)
);

CREATE TABLE calibration_points (
    calibration_id  bigint NOT NULL REFERENCES tank_calibrations (id) ON DELETE CASCADE,
    dp_inh2o        double precision NOT NULL CHECK (dp_inh2o >= 0),
    contents_kg     double precision NOT NULL CHECK (contents_kg >= 0),
    PRIMARY KEY (calibration_id, dp_inh2o)
);

CREATE TABLE cylinder_banks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    facility_id     bigint NOT NULL REFERENCES organisations (id),
    code            text NOT NULL,
    cylinder_count  integer NOT NULL CHECK (cylinder_count >= 0),
    water_volume_l  double precision NOT NULL DEFAULT 40 CHECK (water_volume_l > 0),
    fill_pressure_bar double precision NOT NULL DEFAULT 150 CHECK (fill_pressure_bar > 0),
    gas_m3_each     double precision NOT NULL DEFAULT 6 CHECK (gas_m3_each > 0),
    UNIQUE (facility_id, code)
);

CREATE TABLE generators (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    facility_id     bigint NOT NULL REFERENCES organisations (id),
    code            text NOT NULL,
    kind            text NOT NULL DEFAULT 'psa' CHECK (kind IN ('psa', 'vsa', 'membrane', 'other')),
    capacity_m3h    double precision NOT NULL CHECK (capacity_m3h >= 0),
    purity_pct      double precision CHECK (purity_pct BETWEEN 0 AND 100),
    UNIQUE (facility_id, code)
);

-- Devices: a gateway belongs to one facility (its topic <site>); sensors hang off gateways.
CREATE TABLE gateways (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    facility_id     bigint NOT NULL REFERENCES organisations (id),
    code            text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name            text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

CREATE TABLE sensors (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway_id      bigint NOT NULL REFERENCES gateways (id),
    code            text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    tank_id         bigint REFERENCES tanks (id),
    quantity        text NOT NULL
                    CHECK (quantity IN ('dp', 'head_pressure', 'line_pressure', 'temperature', 'level_pct', 'contents', 'flow')),
    unit            text NOT NULL,
    register_ref    text,
    valid_min       double precision,
    valid_max       double precision,
    UNIQUE (gateway_id, code)
);
CREATE INDEX sensors_tank_idx ON sensors (tank_id);
