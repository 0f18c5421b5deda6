-- Nm3 per kg of oxygen at the declared reference (0 °C, 101.325 kPa) for the real gas, as
-- oxy.contract.Reference.gas_density computes it: Z = 1 + B·p/(R·T) with the second virial
-- coefficient of O2 at 273.15 K, B = -21.9 cm3/mol, so 1.429 kg/m3 and 1 kg = 0.6998 Nm3
-- (shared DOMAIN.md). 0030 used the ideal gas (0.7005: every Nm3 0.1 % high).
-- depends: 0030_grafana_views

CREATE OR REPLACE FUNCTION grafana.nm3_per_kg() RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (1.0 + (-21.9e-6 * 101325.0) / (8.314462618 * 273.15)) * (8.314462618 * 273.15)
           / (101325.0 * 0.031999)
$$;
