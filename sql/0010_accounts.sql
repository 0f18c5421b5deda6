-- Accounts, roles and scopes; web sessions; API tokens; DB-backed login throttling.
-- Accounts are issued by an administrator (no self sign-up). Secrets are never stored in clear:
-- passwords as argon2 hashes, session and API tokens as SHA-256 digests of random values.
-- depends: 0002_readings

CREATE TABLE users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{1,63}$'),
    display_name    text NOT NULL,
    role            text NOT NULL CHECK (role IN ('admin', 'byt', 'syt', 'facility', 'supplier', 'engineer')),
    org_id          bigint REFERENCES organisations (id),
    -- Engineers are scoped to user_facilities unless national; BYT and admin are always national.
    national        boolean NOT NULL DEFAULT false,
    locale          text NOT NULL DEFAULT 'vi' CHECK (locale IN ('vi', 'en')),
    password_hash   text NOT NULL,
    must_change_password boolean NOT NULL DEFAULT true,
    is_active       boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    CHECK (role NOT IN ('syt', 'facility', 'supplier') OR org_id IS NOT NULL)
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE INDEX users_org_idx ON users (org_id);

-- The facilities an engineer looks after (ignored for other roles).
CREATE TABLE user_facilities (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    facility_id bigint NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, facility_id)
);

-- Server-side web sessions: the cookie carries a random token; only its digest is stored.
CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    user_agent  text,
    ip          text
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Revocable bearer tokens for API clients and integrations.
CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    token_hash  bytea NOT NULL UNIQUE,
    prefix      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- Failed logins per key ('user:<name>' or 'ip:<addr>'): in the database so that a lockout
-- survives restarts and holds across API replicas.
CREATE TABLE login_throttle (
    key             text PRIMARY KEY,
    failures        integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    first_failure   timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz
);
