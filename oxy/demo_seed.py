"""A realistic demo country: four provinces, thirteen facilities with LOX tanks and cylinder
banks, a ministry health office, three suppliers, gateways and sensors matching the simulator.

Names of public hospitals are real; every figure (sizes, consumption, people) is invented.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg

from oxy.calibration import vertical_tank_table

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoTank:
    """One simulated LOX tank."""

    code: str
    capacity_kg: float
    diameter_m: float
    fill: float  # initial fill fraction
    daily_kg: float  # mean daily consumption


@dataclass(frozen=True, slots=True)
class DemoFacility:
    """One demo facility (CSYT) with its tanks and cylinder bank."""

    code: str
    name: str
    province: str
    lat: float
    lon: float
    beds: int
    icu_beds: int
    tanks: tuple[DemoTank, ...]
    cylinders: int = 40
    parent: str | None = None  # reporting parent code; default the province's SYT
    address: str = ""

    @property
    def gateway_code(self) -> str:
        """The gateway serving this facility's tanks."""
        return f"gw-{self.code.lower()}"

    @property
    def parent_code(self) -> str:
        """Reporting parent organisation code."""
        return self.parent or f"SYT-{self.province}"


@dataclass(frozen=True, slots=True)
class DemoSupplier:
    """One demo supplier."""

    code: str
    name: str
    kind: str
    province: str
    lat: float
    lon: float
    normal_tpd: float
    full_tpd: float


def _t(code: str, kg: float, fill: float, daily: float) -> DemoTank:
    # Diameter grows with size the way vendors' vertical LOX tanks do (6 m3 ≈ 1.9 m, 30 m3 ≈ 2.6 m).
    diameter = 1.9 if kg <= 8000 else 2.2 if kg <= 16000 else 2.4 if kg <= 25000 else 2.6
    return DemoTank(code, kg, diameter, fill, daily)


MINISTRY_OFFICES: tuple[tuple[str, str, str], ...] = (("YT-BCA", "Cục Y tế Bộ Công an", "01"),)

FACILITIES: tuple[DemoFacility, ...] = (
    DemoFacility(
        "BV-CHORAY",
        "Bệnh viện Chợ Rẫy",
        "79",
        10.7580,
        106.6595,
        1800,
        260,
        (_t("T1", 22820, 0.72, 4200), _t("T2", 22820, 0.55, 0), _t("T3", 11410, 0.9, 0)),
    ),
    DemoFacility(
        "BV-NHIETDOI-HCM",
        "Bệnh viện Bệnh Nhiệt đới TP.HCM",
        "79",
        10.7530,
        106.6780,
        550,
        90,
        (_t("T1", 11410, 0.48, 1700), _t("T2", 6846, 0.8, 0)),
    ),
    DemoFacility(
        "BV-HSCOVID-HCM",
        "Bệnh viện Hồi sức COVID-19 TP.HCM",
        "79",
        10.8590,
        106.7290,
        500,
        300,
        (_t("T1", 34230, 0.35, 6100),),
    ),
    DemoFacility(
        "BV-THUDUC",
        "Bệnh viện Đa khoa Thủ Đức",
        "79",
        10.8500,
        106.7720,
        1000,
        80,
        (_t("T1", 11410, 0.25, 1900),),
    ),
    DemoFacility(
        "BV-30-4",
        "Bệnh viện 30-4 (Bộ Công an)",
        "79",
        10.7640,
        106.6720,
        500,
        40,
        (_t("T1", 6846, 0.65, 700),),
        parent="YT-BCA",
    ),
    DemoFacility(
        "BV-BACHMAI",
        "Bệnh viện Bạch Mai",
        "01",
        21.0010,
        105.8410,
        3000,
        300,
        (_t("T1", 22820, 0.81, 3900), _t("T2", 22820, 0.6, 0)),
    ),
    DemoFacility(
        "BV-NDTW2",
        "Bệnh viện Bệnh Nhiệt đới Trung ương cơ sở 2",
        "01",
        21.1230,
        105.7850,
        1000,
        150,
        (_t("T1", 22820, 0.42, 3300),),
    ),
    DemoFacility(
        "BV-DUCGIANG",
        "Bệnh viện Đa khoa Đức Giang",
        "01",
        21.0600,
        105.8990,
        700,
        45,
        (_t("T1", 11410, 0.66, 1100),),
    ),
    DemoFacility(
        "BV-THANHNHAN",
        "Bệnh viện Thanh Nhàn",
        "01",
        21.0030,
        105.8590,
        600,
        40,
        (_t("T1", 6846, 0.3, 950),),
    ),
    DemoFacility(
        "BV-DKDONGNAI",
        "Bệnh viện Đa khoa Đồng Nai",
        "75",
        10.9580,
        106.8450,
        1400,
        120,
        (_t("T1", 22820, 0.58, 2600), _t("T2", 11410, 0.7, 0)),
    ),
    DemoFacility(
        "BV-THONGNHAT-DN",
        "Bệnh viện Đa khoa Thống Nhất Đồng Nai",
        "75",
        10.9460,
        106.8250,
        1200,
        90,
        (_t("T1", 11410, 0.22, 1800),),
    ),
    DemoFacility(
        "BV-LONGKHANH",
        "Bệnh viện Đa khoa khu vực Long Khánh",
        "75",
        10.9330,
        107.2420,
        500,
        30,
        (_t("T1", 6846, 0.77, 500),),
    ),
    DemoFacility(
        "BV-DKBACNINH",
        "Bệnh viện Đa khoa tỉnh Bắc Ninh",
        "24",
        21.1780,
        106.0620,
        1200,
        80,
        (_t("T1", 11410, 0.61, 1200), _t("T2", 6846, 0.5, 0)),
    ),
)

SUPPLIERS: tuple[DemoSupplier, ...] = (
    DemoSupplier(
        "NCC-KHIMIENNAM",
        "Công ty Khí công nghiệp Miền Nam (demo)",
        "producer",
        "75",
        10.9010,
        106.9050,
        180.0,
        240.0,
    ),
    DemoSupplier(
        "NCC-KHIMIENBAC",
        "Công ty Khí công nghiệp Miền Bắc (demo)",
        "producer",
        "24",
        21.1400,
        106.0000,
        120.0,
        160.0,
    ),
    DemoSupplier(
        "NCC-CHIETNAP-HCM",
        "Trạm chiết nạp Oxy Bình Chánh (demo)",
        "filling_station",
        "79",
        10.6900,
        106.5900,
        25.0,
        35.0,
    ),
)


@dataclass
class SeedSummary:
    """What the seed created (or found already there)."""

    facilities: int = 0
    tanks: int = 0
    suppliers: int = 0
    sensors: int = 0
    created: bool = False
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        verb = "seeded" if self.created else "already seeded"
        return (
            f"demo country {verb}: {self.facilities} facilities, {self.tanks} LOX tanks, "
            f"{self.sensors} sensors, {self.suppliers} suppliers"
        )


def _org(conn: psycopg.Connection[Any], code: str) -> int:
    row = conn.execute("SELECT id FROM organisations WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise LookupError(f"organisation {code} missing")
    return int(row[0])


def seed_demo(url: str) -> SeedSummary:
    """Create the demo country if it is not there yet (idempotent: a second run changes nothing)."""
    summary = SeedSummary()
    with psycopg.connect(url) as conn, conn.transaction():
        byt = _org(conn, "BYT")
        for code, name, province in MINISTRY_OFFICES:
            conn.execute(
                "INSERT INTO organisations (code, kind, name, province_code, parent_id) "
                "VALUES (%s, 'ministry_office', %s, %s, %s) ON CONFLICT (code) DO NOTHING",
                (code, name, province, byt),
            )
        for f in FACILITIES:
            summary.facilities += 1
            row = conn.execute(
                "INSERT INTO organisations (code, kind, name, province_code, parent_id) "
                "VALUES (%s, 'facility', %s, %s, %s) ON CONFLICT (code) DO NOTHING RETURNING id",
                (f.code, f.name, f.province, _org(conn, f.parent_code)),
            ).fetchone()
            if row is None:
                summary.tanks += len(f.tanks)
                summary.sensors += 2 * len(f.tanks)
                continue
            summary.created = True
            fid = int(row[0])
            _seed_facility(conn, fid, f)
            summary.tanks += len(f.tanks)
            summary.sensors += 2 * len(f.tanks)
        for s in SUPPLIERS:
            summary.suppliers += 1
            row = conn.execute(
                "INSERT INTO organisations (code, kind, name, province_code) "
                "VALUES (%s, 'supplier', %s, %s) ON CONFLICT (code) DO NOTHING RETURNING id",
                (s.code, s.name, s.province),
            ).fetchone()
            if row is None:
                continue
            conn.execute(
                "INSERT INTO suppliers (org_id, supplier_kind, latitude, longitude, "
                "capacity_normal_tpd, capacity_full_tpd) VALUES (%s, %s, %s, %s, %s, %s)",
                (row[0], s.kind, s.lat, s.lon, s.normal_tpd, s.full_tpd),
            )
            conn.execute(
                "INSERT INTO contacts (org_id, full_name, role, phone, is_primary) "
                "VALUES (%s, %s, %s, %s, true)",
                (row[0], "Phòng Kinh doanh", "Điều độ", "0280000000"),
            )
    return summary


def _seed_facility(conn: psycopg.Connection[Any], fid: int, f: DemoFacility) -> None:
    conn.execute(
        "INSERT INTO facilities (org_id, facility_type, address, latitude, longitude, beds, "
        "icu_beds) VALUES (%s, 'hospital', %s, %s, %s, %s, %s)",
        (fid, f.address or None, f.lat, f.lon, f.beds, f.icu_beds),
    )
    conn.execute(
        "INSERT INTO contacts (org_id, full_name, role, phone, email, is_primary) "
        "VALUES (%s, %s, %s, %s, %s, true)",
        (
            fid,
            "Phòng Vật tư - Thiết bị y tế",
            "Trưởng phòng",
            "0240000000",
            f"vattu@{f.code.lower()}.example.vn",
        ),
    )
    conn.execute(
        "INSERT INTO cylinder_banks (facility_id, code, cylinder_count) VALUES (%s, 'CYL', %s)",
        (fid, f.cylinders),
    )
    gw = conn.execute(
        "INSERT INTO gateways (facility_id, code, name) VALUES (%s, %s, %s) RETURNING id",
        (fid, f.gateway_code, f"Gateway {f.code}"),
    ).fetchone()
    assert gw is not None
    for t in f.tanks:
        tank = conn.execute(
            "INSERT INTO tanks (facility_id, code, name, capacity_kg, diameter_m, min_usable_kg, "
            "max_pressure_bar) VALUES (%s, %s, %s, %s, %s, %s, 17) RETURNING id",
            (
                fid,
                t.code,
                f"Bồn oxy lỏng {t.code}",
                t.capacity_kg,
                t.diameter_m,
                round(t.capacity_kg * 0.05),
            ),
        ).fetchone()
        assert tank is not None
        table = vertical_tank_table(t.capacity_kg, t.diameter_m)
        cal = conn.execute(
            "INSERT INTO tank_calibrations (tank_id, version, valid_from, note) "
            "VALUES (%s, 1, '2020-01-01T00:00:00Z', %s) RETURNING id",
            (tank[0], "Bảng hiệu chuẩn nhà sản xuất / vendor strapping table"),
        ).fetchone()
        assert cal is not None
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO calibration_points (calibration_id, dp_inh2o, contents_kg) "
                "VALUES (%s, %s, %s)",
                [(cal[0], dp, kg) for dp, kg in zip(table.dp, table.kg, strict=True)],
            )
        for suffix, quantity, unit, lo, hi in (
            ("dp", "dp", "inH2O", 0.0, table.dp[-1] * 1.1),
            ("p", "head_pressure", "bar", 0.0, 20.0),
        ):
            conn.execute(
                "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit, valid_min, "
                "valid_max) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (gw[0], f"{t.code}-{suffix}", tank[0], quantity, unit, lo, hi),
            )
