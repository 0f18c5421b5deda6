"""Property tests of the facility report's quality gate (hypothesis, real PostgreSQL):

- a random valid report round-trips unchanged (what is read back is what was typed);
- a random report, valid or not, is either refused with field errors (nothing stored: the
  revision does not move) or stored satisfying every rule — never stored silently wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.accounting.config import AccountingConfig
from api.accounting.simulate import add_facility
from api.accounting.therapy import Therapy
from api.accounting.windows import local_today
from api.reports import facility, rules
from api.reports.errors import ValidationFailed

CFG = AccountingConfig.defaults()
DAY = local_today(datetime.now(UTC), CFG) - timedelta(days=1)


class Harness:
    """One facility, one event loop and one connection shared by all examples."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: psycopg.AsyncConnection[Any] = self.run(
            psycopg.AsyncConnection.connect(url, autocommit=True)
        )
        cur = self.run(self.conn.execute("SELECT id FROM organisations WHERE code = 'SYT-01'"))
        row = self.run(cur.fetchone())
        assert row
        self.facility = self.run(add_facility(self.conn, "BV-PROP", int(row[0]), "01"))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def file(self, body: facility.FacilityReportIn, day: date = DAY) -> facility.SavedReport:
        out: facility.SavedReport = self.run(
            facility.file_report(
                self.conn, self.facility, day, body, author="prop", cfg=CFG, now=datetime.now(UTC)
            )
        )
        return out

    def view(self, day: date = DAY) -> facility.FacilityReportView:
        out: facility.FacilityReportView = self.run(
            facility.report_view(self.conn, self.facility, day, cfg=CFG, now=datetime.now(UTC))
        )
        return out

    def supplier(self) -> int:
        """A supplier with a registry full capacity of 240 t/day (made once)."""
        if not hasattr(self, "_supplier"):
            cur = self.run(
                self.conn.execute(
                    "INSERT INTO organisations (code, kind, name) "
                    "VALUES ('NCC-PROP', 'supplier', 'P') RETURNING id"
                )
            )
            row = self.run(cur.fetchone())
            self.run(
                self.conn.execute(
                    "INSERT INTO suppliers (org_id, supplier_kind, capacity_full_tpd) "
                    "VALUES (%s, 'producer', 240)",
                    (row[0],),
                )
            )
            self._supplier = int(row[0])
        return self._supplier

    def close(self) -> None:
        self.run(self.conn.close())
        self.loop.close()


@pytest.fixture(scope="module")
def harness(module_db_url: str) -> Iterator[Harness]:
    h = Harness(module_db_url)
    yield h
    h.close()


gas = st.floats(min_value=0, max_value=100_000, allow_nan=False).map(lambda v: round(v, 3))


@st.composite
def valid_reports(draw: st.DrawFn) -> facility.FacilityReportIn:
    current = draw(st.integers(0, 5_000))
    new = draw(st.integers(0, current))
    on_o2: dict[Therapy, int] = {}
    left = current
    for t in draw(st.lists(st.sampled_from(list(Therapy)), unique=True, max_size=5)):
        n = draw(st.integers(0, left))
        on_o2[t] = n
        left -= n
    q = {
        name: {"value": draw(gas), "unit": "nm3"}
        for name in ("refilled_gas", "stock_gas", "capacity", "avg_need")
        if draw(st.booleans())
    }
    return facility.FacilityReportIn.model_validate(
        {
            "patients_current": current,
            "patients_new": new,
            "discharged_evening": draw(st.integers(0, 5_000)),
            "on_oxygen": on_o2,
            "notes": draw(
                st.none() | st.text(st.characters(blacklist_characters="\x00"), max_size=50)
            ),
            **q,
        }
    )


counts = st.none() | st.integers(-5, 10) | st.integers(-(2**40), 2**40)
quantities = st.none() | st.floats(min_value=-1, max_value=1e21, allow_nan=False)


@st.composite
def any_reports(draw: st.DrawFn) -> facility.FacilityReportIn:
    q = {}
    for name in ("refilled_gas", "stock_gas", "capacity", "avg_need"):
        v = draw(quantities)
        if v is not None:
            q[name] = {"value": v, "unit": "nm3"}
    return facility.FacilityReportIn.model_validate(
        {
            "patients_current": draw(counts),
            "patients_new": draw(counts),
            "discharged_evening": draw(counts),
            "on_oxygen": {
                t: n for t in Therapy if (n := draw(st.none() | st.integers(-3, 2**33))) is not None
            },
            "notes": draw(st.none() | st.text(max_size=20)),  # NUL included
            **q,
        }
    )


PROPS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPS
@given(body=valid_reports())
def test_valid_reports_round_trip_unchanged(
    harness: Harness, body: facility.FacilityReportIn
) -> None:
    saved = harness.file(body)
    snap = harness.view().revisions[-1].snapshot
    assert saved.revision == harness.view().revision
    for name in ("patients_current", "patients_new", "discharged_evening", "notes"):
        assert snap[name] == getattr(body, name)
    for t in Therapy:
        assert snap["o2_" + t.value] == body.on_oxygen.get(t)
    for name, (column, _kind) in facility.QUANTITY_FIELDS.items():
        typed = getattr(body, name)
        assert snap[column] == (None if typed is None else pytest.approx(typed.value))


@PROPS
@given(body=any_reports())
def test_any_report_is_refused_or_stored_satisfying_the_rules(
    harness: Harness, body: facility.FacilityReportIn
) -> None:
    day = DAY - timedelta(days=3)  # no report the day before: the discharge rule cannot apply
    before = harness.view(day).revision
    try:
        harness.file(body, day)
    except ValidationFailed as exc:
        assert exc.errors and harness.view(day).revision == before
        return
    snap = harness.view(day).revisions[-1].snapshot
    current, new = snap["patients_current"], snap["patients_new"]
    assert current is not None and new is not None and snap["discharged_evening"] is not None
    assert 0 <= new <= current <= rules.MAX_PATIENTS
    therapies = [snap["o2_" + t.value] or 0 for t in Therapy]
    assert all(n >= 0 for n in therapies) and sum(therapies) <= current
    for column in ("refilled_gas_nm3", "stock_gas_nm3", "capacity_nm3", "avg_need_nm3"):
        assert snap[column] is None or 0 <= snap[column] <= rules.MAX_NM3


def test_a_nul_character_is_a_field_error_not_a_server_error(harness: Harness) -> None:
    body = facility.FacilityReportIn(
        patients_current=3, patients_new=1, discharged_evening=0, notes="a\x00b"
    )
    with pytest.raises(ValidationFailed) as exc:
        harness.file(body, DAY - timedelta(days=5))
    assert [(e.field, e.key) for e in exc.value.errors] == [("notes", "report.error.invalid_text")]


tpd = st.none() | st.floats(min_value=-1, max_value=1e12, allow_nan=False)


@PROPS
@given(
    production=st.floats(min_value=-1, max_value=1e12, allow_nan=False),
    normal=tpd,
    full=tpd,
    cylinders=st.none() | st.integers(-1, 2**40),
    confirm=st.booleans(),
)
def test_any_supplier_report_is_refused_or_stored_within_the_rules(
    harness: Harness,
    production: float,
    normal: float | None,
    full: float | None,
    cylinders: int | None,
    confirm: bool,
) -> None:
    from api.reports import supplier

    sup = harness.supplier()
    body = supplier.SupplierReportIn(
        production_t=production,
        capacity_normal_tpd=normal,
        capacity_full_tpd=full,
        cylinders_filled=cylinders,
        confirm={"production_t": "checked"} if confirm else {},
    )
    day = DAY - timedelta(days=2)
    try:
        harness.run(
            supplier.save(harness.conn, sup, day, body, author="p", cfg=CFG, now=datetime.now(UTC))
        )
    except ValidationFailed as exc:
        assert exc.errors
        return
    got = harness.run(
        supplier.view(
            harness.conn, sup, day, cfg=CFG, now=datetime.now(UTC), show_facility_figures=False
        )
    )
    assert got is not None
    cap = got.capacity_full_tpd if got.capacity_full_tpd is not None else 240.0
    assert 0 <= got.production_t <= 1.5 * cap and got.production_t <= rules.MAX_SUPPLIER_TPD
    assert confirm or got.production_t <= cap  # above capacity only when confirmed
    for v in (got.capacity_normal_tpd, got.capacity_full_tpd):
        assert v is None or 0 <= v <= rules.MAX_SUPPLIER_TPD
    assert got.cylinders_filled is None or 0 <= got.cylinders_filled <= rules.MAX_CYLINDERS
