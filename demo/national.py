"""A generated national country for load tests (issue 22): every one of the 34 provinces of the
reference data, ~2,000 facilities, ~3,000 LOX tanks with a DP and a head-pressure sensor each,
a cylinder bank per facility, suppliers, a gateway per facility, accounts for every role, and
days of tank history.

Names and figures are invented (``NAT-<province>-<n>``, "Bệnh viện Đa khoa số n"); nothing here
is real. Everything is written set-based: the generated rows are COPYed into temporary tables
and spread over the registry with a handful of ``INSERT … SELECT``; the history is one
``generate_series`` per run, its rollups one ``GROUP BY`` per level. A second run changes
nothing (the facilities' codes are the marker).

All national accounts share one generated password (hashed once: 2,000 argon2 hashes would take
minutes), returned in the summary and written by the CLI to a 0600 file: this is a bench country.
"""

from __future__ import annotations

import csv
import logging
import math
import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, LiteralString

import psycopg
from psycopg import sql as pgsql

from oxy.calibration import vertical_tank_table
from oxy.database import storage_kind

logger = logging.getLogger(__name__)

CODE_PREFIX = "NAT-"
# LOX tank sizes the vendors sell (kg of LOX, diameter m), as in the demo country.
TANK_SIZES: tuple[tuple[float, float], ...] = (
    (6846.0, 1.9),
    (11410.0, 2.2),
    (22820.0, 2.4),
    (34230.0, 2.6),
)
# Bigger cities hold more hospitals: weight of each province in the draw of facilities.
CITY_WEIGHT = {"01": 6.0, "79": 6.0, "31": 2.5, "48": 2.0, "92": 2.0, "46": 1.5}


@dataclass(frozen=True, slots=True)
class NationalScale:
    """How big a generated country is; `history_step_s` is the spacing of the DP history, and
    `dense_hours` the hours of it at one reading a second, centred on the last 16:00 cut-off
    (what the accounting windows' minute data reads on a country at 1 Hz)."""

    facilities: int = 2000
    tanks: int = 3000
    suppliers: int = 60
    history_days: float = 30.0
    history_step_s: int = 300
    seed: int = 22
    dense_hours: float = 0.0

    def __post_init__(self) -> None:
        if self.facilities < 1 or self.tanks < self.facilities or self.tanks > 3 * self.facilities:
            raise ValueError("tanks must be between 1 and 3 per facility")
        if self.history_days < 0 or self.history_step_s < 60:
            raise ValueError("history_days must be >= 0 and history_step_s >= 60")
        if self.suppliers < 1:
            raise ValueError("at least one supplier")
        if not 0 <= self.dense_hours <= 24:
            raise ValueError("dense_hours must be in [0, 24]")


NATIONAL = NationalScale()


@dataclass
class NationalSummary:
    """What the national seed created (or found)."""

    provinces: int = 0
    facilities: int = 0
    tanks: int = 0
    sensors: int = 0
    suppliers: int = 0
    accounts: int = 0
    readings: int = 0
    created: bool = False
    password: str | None = None
    usernames: dict[str, list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        verb = "seeded" if self.created else "already seeded"
        return (
            f"national country {verb}: {self.provinces} provinces, {self.facilities} facilities, "
            f"{self.tanks} LOX tanks, {self.sensors} sensors, {self.suppliers} suppliers, "
            f"{self.accounts} accounts, {self.readings} history readings"
        )


@dataclass(frozen=True, slots=True)
class _Province:
    code: str
    name: str
    lat: float
    lon: float


def _provinces() -> list[_Province]:
    def rows(name: str) -> list[dict[str, str]]:
        text = resources.files("oxy.data").joinpath(name).read_text(encoding="utf-8")
        return list(csv.DictReader(text.splitlines()))

    seats = {r["code"]: (float(r["lat"]), float(r["lon"])) for r in rows("province-seats-2025.csv")}
    out = []
    for r in rows("provinces-2025.csv"):
        if r["code"] not in seats:
            raise LookupError(f"province {r['code']} has no seat in province-seats-2025.csv")
        lat, lon = seats[r["code"]]
        out.append(_Province(r["code"], r["name"], lat, lon))
    return out


def _plan(
    scale: NationalScale, provinces: list[_Province]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(facility rows, tank rows, supplier rows), deterministic for the scale's seed."""
    rng = random.Random(scale.seed)
    # Every province gets at least one facility; the rest by weight.
    weights = [CITY_WEIGHT.get(p.code, 1.0) for p in provinces]
    counts = [1] * len(provinces)
    for k in rng.choices(range(len(provinces)), weights, k=scale.facilities - len(provinces)):
        counts[k] += 1
    facilities: list[tuple[Any, ...]] = []
    tanks: list[tuple[Any, ...]] = []
    extra = scale.tanks - scale.facilities
    n = 0
    for p, count in zip(provinces, counts, strict=True):
        for i in range(1, count + 1):
            n += 1
            code = f"{CODE_PREFIX}{p.code}-{i:04d}"
            beds = max(30, int(rng.lognormvariate(5.6, 0.7)))
            n_tanks = 1 + (2 if extra >= 2 and beds > 900 else 1 if extra >= 1 and n % 2 else 0)
            extra -= n_tanks - 1
            facilities.append(
                (
                    code,
                    f"Bệnh viện Đa khoa số {i} {p.name}",
                    p.code,
                    p.lat + rng.gauss(0, 0.12),
                    p.lon + rng.gauss(0, 0.12),
                    beds,
                    max(2, beds // 12),
                    10 + beds // 20,
                )
            )
            for t in range(1, n_tanks + 1):
                size = min(len(TANK_SIZES) - 1, int(beds / 450) + rng.randrange(2))
                capacity, diameter = TANK_SIZES[size]
                # Consumption 6-14 %/day of capacity on the main tank, reserves draw nothing.
                daily = capacity * rng.uniform(0.06, 0.14) if t == 1 else 0.0
                tanks.append((code, f"T{t}", capacity, diameter, rng.random(), daily))
    # A facility short of tanks (rounding above) leaves `extra` over: give it to the first ones.
    k = 0
    while extra > 0:
        code = facilities[k % len(facilities)][0]
        have = sum(1 for t in tanks if t[0] == code)
        if have < 3:
            capacity, diameter = TANK_SIZES[1]
            tanks.append((code, f"T{have + 1}", capacity, diameter, rng.random(), 0.0))
            extra -= 1
        k += 1
    suppliers = []
    for s in range(1, scale.suppliers + 1):
        p = provinces[rng.randrange(len(provinces))]
        producer = s % 4 == 1
        suppliers.append(
            (
                f"{CODE_PREFIX}NCC-{s:03d}",
                f"Công ty Khí y tế số {s} {p.name}",
                "producer" if producer else "filling_station",
                p.code,
                p.lat + rng.gauss(0, 0.1),
                p.lon + rng.gauss(0, 0.1),
                round(rng.uniform(80, 200) if producer else rng.uniform(10, 40), 1),
            )
        )
    return facilities, tanks, suppliers


_REGISTRY_SQL = (
    # Facilities under their province's SYT.
    """
    INSERT INTO organisations (code, kind, name, province_code, parent_id)
    SELECT f.code, 'facility', f.name, f.province, syt.id
    FROM nat_fac f JOIN organisations syt ON syt.code = 'SYT-' || f.province
    """,
    """
    INSERT INTO facilities (org_id, facility_type, latitude, longitude, beds, icu_beds,
                            active_from)
    SELECT o.id, 'hospital', f.lat, f.lon, f.beds, f.icu_beds, %(first_day)s
    FROM nat_fac f JOIN organisations o ON o.code = f.code
    """,
    """
    INSERT INTO contacts (org_id, full_name, role, phone, email, is_primary)
    SELECT o.id, 'Phòng Vật tư - Thiết bị y tế', 'Trưởng phòng', '0200000000',
           'vattu@' || lower(f.code) || '.example.vn', true
    FROM nat_fac f JOIN organisations o ON o.code = f.code
    """,
    """
    INSERT INTO cylinder_banks (facility_id, code, cylinder_count)
    SELECT o.id, 'CYL', f.cylinders FROM nat_fac f JOIN organisations o ON o.code = f.code
    """,
    """
    INSERT INTO gateways (facility_id, code, name)
    SELECT o.id, 'gw-' || lower(f.code), 'Gateway ' || f.code
    FROM nat_fac f JOIN organisations o ON o.code = f.code
    """,
    """
    INSERT INTO tanks (facility_id, code, name, capacity_kg, diameter_m, min_usable_kg,
                       max_pressure_bar)
    SELECT o.id, t.code, 'Bồn oxy lỏng ' || t.code, t.capacity_kg, t.diameter_m,
           round(t.capacity_kg * 0.05), 17
    FROM nat_tank t JOIN organisations o ON o.code = t.facility
    """,
    """
    INSERT INTO tank_calibrations (tank_id, version, valid_from, note)
    SELECT t.id, 1, '2020-01-01T00:00:00Z', 'Bảng hiệu chuẩn nhà sản xuất / vendor strapping table'
    FROM nat_tank n JOIN organisations o ON o.code = n.facility
    JOIN tanks t ON t.facility_id = o.id AND t.code = n.code
    """,
    """
    INSERT INTO calibration_points (calibration_id, dp_inh2o, contents_kg)
    SELECT c.id, p.dp, p.kg
    FROM nat_tank n JOIN organisations o ON o.code = n.facility
    JOIN tanks t ON t.facility_id = o.id AND t.code = n.code
    JOIN tank_calibrations c ON c.tank_id = t.id AND c.version = 1
    JOIN nat_cal p ON p.capacity_kg = n.capacity_kg AND p.diameter_m = n.diameter_m
    """,
    """
    INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit, valid_min, valid_max)
    SELECT g.id, n.code || s.suffix, t.id, s.quantity, s.unit, 0,
           CASE WHEN s.quantity = 'dp' THEN m.dp_max * 1.1 ELSE 20 END
    FROM nat_tank n JOIN organisations o ON o.code = n.facility
    JOIN tanks t ON t.facility_id = o.id AND t.code = n.code
    JOIN gateways g ON g.code = 'gw-' || lower(n.facility)
    JOIN (SELECT capacity_kg, diameter_m, max(dp) AS dp_max FROM nat_cal
          GROUP BY capacity_kg, diameter_m) m
      ON m.capacity_kg = n.capacity_kg AND m.diameter_m = n.diameter_m
    CROSS JOIN (VALUES ('-dp', 'dp', 'inH2O'), ('-p', 'head_pressure', 'bar'))
         AS s (suffix, quantity, unit)
    """,
    """
    INSERT INTO organisations (code, kind, name, province_code)
    SELECT code, 'supplier', name, province FROM nat_sup
    """,
    """
    INSERT INTO suppliers (org_id, supplier_kind, latitude, longitude, capacity_normal_tpd,
                           capacity_full_tpd)
    SELECT o.id, s.kind, s.lat, s.lon, s.tpd, round(s.tpd * 1.3, 1)
    FROM nat_sup s JOIN organisations o ON o.code = s.code
    """,
    """
    INSERT INTO contacts (org_id, full_name, role, phone, is_primary)
    SELECT o.id, 'Phòng Kinh doanh', 'Điều độ', '0200000001', true
    FROM nat_sup s JOIN organisations o ON o.code = s.code
    """,
)

# The DP history: a sawtooth per tank (draw at the tank's daily rate, a tanker at 25 % brings
# it back to 85 %), as a fraction of the tank's full-scale DP, plus a little sensor noise.
_HISTORY_SQL = """
INSERT INTO readings (sensor_id, ts, value, quality, received_at)
SELECT s.id, g.ts,
       round((m.dp_max * (0.85 - mod((n.phase * 0.6 + n.daily_kg / n.capacity_kg
             * extract(epoch FROM g.ts - %(origin)s) / 86400.0)::numeric, 0.6)::float8)
             + 0.05 * sin(extract(epoch FROM g.ts)::float8 / 97.0 + s.id))::numeric, 3)::float8,
       0, g.ts
FROM nat_tank n JOIN organisations o ON o.code = n.facility
JOIN tanks t ON t.facility_id = o.id AND t.code = n.code
JOIN sensors s ON s.tank_id = t.id AND s.quantity = 'dp'
JOIN (SELECT capacity_kg, diameter_m, max(dp) AS dp_max FROM nat_cal
      GROUP BY capacity_kg, diameter_m) m
  ON m.capacity_kg = n.capacity_kg AND m.diameter_m = n.diameter_m
CROSS JOIN generate_series(%(start)s::timestamptz, %(end)s::timestamptz,
                           make_interval(secs => %(step)s)) AS g (ts)
ON CONFLICT DO NOTHING
"""

# The newest value of every national sensor (the head pressure gets a steady 11-13 bar).
_LATEST_SQL = """
INSERT INTO sensor_latest (sensor_id, ts, value, quality, received_at)
SELECT s.id, %(end)s, coalesce(r.value, 11 + mod(s.id, 20) / 10.0), 0, %(end)s
FROM sensors s JOIN gateways g ON g.id = s.gateway_id
LEFT JOIN readings r ON r.sensor_id = s.id AND r.ts = %(end)s
WHERE g.code LIKE 'gw-nat-%%'
ON CONFLICT (sensor_id) DO NOTHING
"""

# Rollup buckets are aligned on this origin, as the platform's rollup functions align them.
_ORIGIN = pgsql.SQL("TIMESTAMPTZ '2000-01-03 00:00:00+00'")
_ROLLUP_1M_SQL = pgsql.SQL("""
INSERT INTO rollup_1m (sensor_id, bucket, first_ts, first_value, last_ts, last_value,
                       min_value, max_value, n)
SELECT r.sensor_id, date_bin(INTERVAL '1 minute', r.ts, {origin}) AS b,
       min(r.ts), (array_agg(r.value ORDER BY r.ts))[1],
       max(r.ts), (array_agg(r.value ORDER BY r.ts DESC))[1],
       min(r.value), max(r.value), count(*)
FROM readings r JOIN sensors s ON s.id = r.sensor_id JOIN gateways g ON g.id = s.gateway_id
WHERE g.code LIKE 'gw-nat-%%' AND r.quality = 0 AND r.value IS NOT NULL
GROUP BY r.sensor_id, b
ON CONFLICT (sensor_id, bucket) DO NOTHING
""").format(origin=_ORIGIN)
# One coarser rollup from the next finer one: tables and width composed in (psycopg.sql).
_ROLLUP_UP_SQL = pgsql.SQL("""
INSERT INTO {coarse} (sensor_id, bucket, first_ts, first_value, last_ts, last_value,
                      min_value, max_value, n)
SELECT f.sensor_id, date_bin({width}::interval, f.bucket, {origin}) AS b,
       min(f.first_ts), (array_agg(f.first_value ORDER BY f.first_ts))[1],
       max(f.last_ts), (array_agg(f.last_value ORDER BY f.last_ts DESC))[1],
       min(f.min_value), max(f.max_value), sum(f.n)
FROM {fine} f JOIN sensors s ON s.id = f.sensor_id JOIN gateways g ON g.id = s.gateway_id
WHERE g.code LIKE 'gw-nat-%%'
GROUP BY f.sensor_id, b
ON CONFLICT (sensor_id, bucket) DO NOTHING
""")


def _copy(conn: psycopg.Connection[Any], ddl: str, table: str, rows: list[tuple[Any, ...]]) -> None:
    conn.execute(ddl)
    with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _stage(
    conn: psycopg.Connection[Any],
    facilities: list[tuple[Any, ...]],
    tanks: list[tuple[Any, ...]],
    suppliers: list[tuple[Any, ...]],
) -> None:
    _copy(
        conn,
        "CREATE TEMP TABLE nat_fac (code text, name text, province text, lat float8, "
        "lon float8, beds int, icu_beds int, cylinders int) ON COMMIT DROP",
        "nat_fac",
        facilities,
    )
    _copy(
        conn,
        "CREATE TEMP TABLE nat_tank (facility text, code text, capacity_kg float8, "
        "diameter_m float8, phase float8, daily_kg float8) ON COMMIT DROP",
        "nat_tank",
        tanks,
    )
    _copy(
        conn,
        "CREATE TEMP TABLE nat_sup (code text, name text, kind text, province text, "
        "lat float8, lon float8, tpd numeric) ON COMMIT DROP",
        "nat_sup",
        suppliers,
    )
    points = []
    for capacity, diameter in TANK_SIZES:
        table = vertical_tank_table(capacity, diameter)
        points += [(capacity, diameter, dp, kg) for dp, kg in zip(table.dp, table.kg, strict=True)]
    _copy(
        conn,
        "CREATE TEMP TABLE nat_cal (capacity_kg float8, diameter_m float8, dp float8, "
        "kg float8) ON COMMIT DROP",
        "nat_cal",
        points,
    )


def _accounts(conn: psycopg.Connection[Any], password_hash: str) -> int:
    """BYT, one SYT per province, every facility and supplier, a national engineer."""
    cur = conn.execute(
        """
        INSERT INTO users (username, display_name, role, org_id, national, password_hash,
                           must_change_password)
        SELECT x.username, x.display_name, x.role, x.org_id, x.national, %(h)s, false
        FROM (
            SELECT 'nat-byt' AS username, 'Cán bộ Bộ Y tế (quốc gia)' AS display_name,
                   'byt' AS role, id AS org_id, false AS national
            FROM organisations WHERE code = 'BYT'
            UNION ALL
            SELECT 'nat-syt-' || province_code, 'Cán bộ ' || name, 'syt', id, false
            FROM organisations WHERE kind = 'syt'
            UNION ALL
            SELECT lower(code), 'Phòng Vật tư ' || name, 'facility', id, false
            FROM organisations WHERE kind = 'facility' AND code LIKE 'NAT-%%'
            UNION ALL
            SELECT lower(code), 'Điều độ ' || name, 'supplier', id, false
            FROM organisations WHERE kind = 'supplier' AND code LIKE 'NAT-%%'
            UNION ALL
            SELECT 'nat-kysu', 'Kỹ sư vận hành (quốc gia)', 'engineer', NULL, true
        ) x
        WHERE NOT EXISTS (SELECT 1 FROM users u WHERE lower(u.username) = x.username)
        """,
        {"h": password_hash},
    )
    return cur.rowcount


def _rollups(conn: psycopg.Connection[Any]) -> None:
    if storage_kind(conn) == "timescaledb":
        return  # continuous aggregates: refreshed after the transaction (see seed_national)
    conn.execute(_ROLLUP_1M_SQL)
    for coarse, fine, width in (
        ("rollup_1h", "rollup_1m", "1 hour"),
        ("rollup_1d", "rollup_1h", "1 day"),
    ):
        conn.execute(
            _ROLLUP_UP_SQL.format(
                coarse=pgsql.Identifier(coarse),
                fine=pgsql.Identifier(fine),
                width=pgsql.Literal(width),
                origin=_ORIGIN,
            )
        )


def _count(conn: psycopg.Connection[Any], query: LiteralString, **params: Any) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def _summary(conn: psycopg.Connection[Any], summary: NationalSummary) -> NationalSummary:
    like = {"like": CODE_PREFIX + "%"}
    summary.provinces = _count(
        conn,
        "SELECT count(DISTINCT province_code) FROM organisations WHERE code LIKE %(like)s "
        "AND kind = 'facility'",
        **like,
    )
    summary.facilities = _count(
        conn,
        "SELECT count(*) FROM organisations WHERE kind = 'facility' AND code LIKE %(like)s",
        **like,
    )
    summary.tanks = _count(
        conn,
        "SELECT count(*) FROM tanks t JOIN organisations o ON o.id = t.facility_id "
        "WHERE o.code LIKE %(like)s",
        **like,
    )
    summary.sensors = _count(
        conn,
        "SELECT count(*) FROM sensors s JOIN gateways g ON g.id = s.gateway_id "
        "WHERE g.code LIKE 'gw-nat-%%'",
    )
    summary.suppliers = _count(
        conn,
        "SELECT count(*) FROM organisations WHERE kind = 'supplier' AND code LIKE %(like)s",
        **like,
    )
    summary.accounts = _count(conn, "SELECT count(*) FROM users WHERE username LIKE 'nat-%%'")
    return summary


def _dense_span(start: datetime, end: datetime, hours: float) -> tuple[datetime, datetime] | None:
    """`hours` around the last 16:00 cut-off before `end`, inside [start, end], or None."""
    from api.accounting.config import AccountingConfig
    from api.accounting.windows import last_complete_day, window

    if hours <= 0:
        return None
    cfg = AccountingConfig.defaults()
    cutoff = window(last_complete_day(end, cfg), cfg).end
    half = timedelta(hours=hours / 2)
    lo, hi = max(start, cutoff - half), min(end, cutoff + half)
    return (lo, hi) if lo < hi else None


def seed_national(
    url: str,
    scale: NationalScale = NATIONAL,
    now: datetime | None = None,
    password: str | None = None,
) -> NationalSummary:
    """Create the generated national country if it is not there yet; return what is there."""
    from api.audit import audit_sync
    from api.auth import hash_password

    end = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    start = end - timedelta(seconds=math.floor(scale.history_days * 86400))
    provinces = _provinces()
    if scale.facilities < len(provinces):
        raise ValueError(f"a national country needs at least {len(provinces)} facilities")
    summary = NationalSummary()
    with psycopg.connect(url) as conn:
        if _count(
            conn,
            "SELECT count(*) FROM organisations WHERE code LIKE %(like)s",
            like=CODE_PREFIX + "%",
        ):
            return _summary(conn, summary)
        facilities, tanks, suppliers = _plan(scale, provinces)
        summary.password = password or "nat-" + secrets.token_urlsafe(12)
        first_day = (start + timedelta(hours=7)).date()  # Vietnam time, as reports count days
        with conn.transaction():
            _stage(conn, facilities, tanks, suppliers)
            for sql in _REGISTRY_SQL:
                conn.execute(sql, {"first_day": first_day} if "%(first_day)s" in sql else None)
            accounts = _accounts(conn, hash_password(summary.password))
            audit_sync(
                conn,
                "oxy db seed-demo --scale national",
                "create",
                "national_demo",
                CODE_PREFIX,
                None,
                {"facilities": len(facilities), "tanks": len(tanks), "accounts": accounts},
            )
            if scale.history_days > 0:
                cur = conn.execute(
                    _HISTORY_SQL,
                    {"origin": start, "start": start, "end": end, "step": scale.history_step_s},
                )
                summary.readings = max(cur.rowcount, 0)
                dense = _dense_span(start, end, scale.dense_hours)
                if dense is not None:
                    # the same sawtooth (`origin`: its phase), sampled every second
                    cur = conn.execute(
                        _HISTORY_SQL,
                        {"origin": start, "start": dense[0], "end": dense[1], "step": 1},
                    )
                    summary.readings += max(cur.rowcount, 0)
            conn.execute(_LATEST_SQL, {"end": end})
            _rollups(conn)
        summary.created = True
        if storage_kind(conn) == "timescaledb" and scale.history_days > 0:
            conn.commit()  # refresh_continuous_aggregate runs outside any transaction
            conn.autocommit = True
            for view in ("rollup_1m", "rollup_1h", "rollup_1d"):
                conn.execute("CALL refresh_continuous_aggregate(%s, NULL, %s)", (view, end))
        _summary(conn, summary)
    logger.info("%s", summary)
    return summary
