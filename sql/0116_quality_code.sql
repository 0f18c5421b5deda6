-- The stored reading quality codes (readings.quality, smallint), defined once for SQL: the wire
-- contract's oxy.contract.QUALITY_CODE (tests/api/test_quality_code_sql.py asserts they match).
-- Queries write `quality = quality_code('good')` instead of a literal 0. IMMUTABLE and without
-- its own search_path so the planner inlines it to a constant (indexes still apply).
-- depends: 0086_facility_first_day

CREATE FUNCTION quality_code(p_name text) RETURNS smallint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE p_name
        WHEN 'good' THEN 0
        WHEN 'stale' THEN 1
        WHEN 'out_of_range' THEN 2
        WHEN 'comm_error' THEN 3
    END::smallint
$$;

COMMENT ON FUNCTION quality_code(text) IS
    'readings.quality code of a wire-contract quality name (oxy.contract.QUALITY_CODE); NULL for an unknown name';
