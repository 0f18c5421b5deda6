-- Audit trail: who, when, what, before/after. Append-only at the database level: a trigger
-- refuses UPDATE, DELETE and TRUNCATE for everyone (superusers included), and the application
-- role is not even granted those privileges.
-- depends: 0010_accounts

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    user_id     bigint REFERENCES users (id),
    username    text NOT NULL,
    role        text,
    action      text NOT NULL,
    entity      text NOT NULL,
    entity_id   text,
    -- The organisation the record belongs to, so its owners (and their supervisors) can read it.
    org_id      bigint,
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id, at);
CREATE INDEX audit_log_org_idx ON audit_log (org_id, at);
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- The application role (cluster-wide, so created only once; a deployment grants it LOGIN or
-- makes the service's login role a member of it). It gets ordinary DML everywhere, including on
-- tables later migrations create, but only SELECT and INSERT on the audit trail.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'oxy_app') THEN
        CREATE ROLE oxy_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database of the same cluster created it concurrently
END
$$;

GRANT USAGE ON SCHEMA public TO oxy_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO oxy_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO oxy_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO oxy_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO oxy_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM oxy_app;
REVOKE ALL ON audit_log FROM PUBLIC;
GRANT SELECT, INSERT ON audit_log TO oxy_app;
