-- An audit trail the application cannot forge, and report revisions it cannot rewrite.
--
-- 1. The application role (oxy_app) no longer inserts into audit_log itself: it calls
--    audit_append(), a SECURITY DEFINER function that stamps the time from the database clock
--    (clock_timestamp(), so no back-dated row) and, for a user id, the user's name and role from
--    `users` (so a row cannot claim another name or role than the account's). A service or the
--    command line acting on its own passes no user id and its name; its role is then NULL.
-- 2. The revision tables of the three reports are append-only for oxy_app (as audit_log is): a
--    revision, and so the copy of an SYT report as sent to the Ministry, is never rewritten. A
--    trigger refuses UPDATE for everyone; DELETE stays possible only through the owner's
--    cascades (a registry row removed with its reports), never for the application role.
-- depends: 0011_audit 0021_reports

CREATE FUNCTION audit_append(
    p_user_id   bigint,
    p_username  text,
    p_action    text,
    p_entity    text,
    p_entity_id text,
    p_org_id    bigint,
    p_before    jsonb,
    p_after     jsonb
) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_username text := p_username;
    v_role     text := NULL;
    v_id       bigint;
BEGIN
    IF p_user_id IS NOT NULL THEN
        SELECT u.username, u.role INTO v_username, v_role FROM public.users u WHERE u.id = p_user_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'audit_append: unknown user %', p_user_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    IF coalesce(btrim(v_username), '') = '' OR coalesce(btrim(p_action), '') = ''
       OR coalesce(btrim(p_entity), '') = '' THEN
        RAISE EXCEPTION 'audit_append: actor, action and entity are required'
            USING ERRCODE = 'not_null_violation';
    END IF;
    INSERT INTO public.audit_log (at, user_id, username, role, action, entity, entity_id, org_id,
                                  before, after)
    VALUES (clock_timestamp(), p_user_id, v_username, v_role, p_action, p_entity, p_entity_id,
            p_org_id, p_before, p_after)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

REVOKE ALL ON FUNCTION audit_append(bigint, text, text, text, text, bigint, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_append(bigint, text, text, text, text, bigint, jsonb, jsonb)
    TO oxy_app;
REVOKE INSERT ON audit_log FROM oxy_app;

CREATE FUNCTION report_revision_no_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (UPDATE refused)', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER facility_report_revisions_no_update
    BEFORE UPDATE ON facility_report_revisions
    FOR EACH ROW EXECUTE FUNCTION report_revision_no_update();
CREATE TRIGGER syt_report_revisions_no_update
    BEFORE UPDATE ON syt_report_revisions
    FOR EACH ROW EXECUTE FUNCTION report_revision_no_update();
CREATE TRIGGER supplier_report_revisions_no_update
    BEFORE UPDATE ON supplier_report_revisions
    FOR EACH ROW EXECUTE FUNCTION report_revision_no_update();

REVOKE UPDATE, DELETE, TRUNCATE ON facility_report_revisions, syt_report_revisions,
    supplier_report_revisions FROM oxy_app;
