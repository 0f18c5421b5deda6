"""Property tests of the aggregations: facilities sum to provinces, provinces to the nation,
filters never leak other scopes, month ends and facilities opening/closing mid-period."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.accounting.config import AccountingConfig
from api.accounting.stock import Status
from api.reports.figures import FacilityFigures, active_facilities, figures_for, known_sum
from api.reports.messages import MESSAGES, text
from api.reports.national import _add, totals
from api.reports.syt import aggregate, completeness

CFG = AccountingConfig.defaults()

counts = st.one_of(st.none(), st.integers(0, 500))
amounts = st.one_of(st.none(), st.floats(0, 50000, allow_nan=False))


@st.composite
def facility(draw: Any, i: int) -> FacilityFigures:
    f = FacilityFigures(i, f"F{i}", f"F{i}", draw(st.sampled_from([1, 2, 3])), None)
    f.reported = draw(st.booleans())
    f.on_time = f.reported and draw(st.booleans())
    f.late = f.reported and not f.on_time
    f.patients_current, f.patients_new, f.discharged = draw(counts), draw(counts), draw(counts)
    f.on_oxygen = {"mask": draw(st.integers(0, 50))}
    f.refilled_liquid_kg, f.refilled_gas_nm3 = draw(amounts), draw(amounts)
    f.stock_liquid_kg, f.stock_gas_nm3 = draw(amounts), draw(amounts)
    f.usable_liquid_kg = f.stock_liquid_kg
    f.capacity_nm3 = f.registry_capacity_nm3 = draw(amounts)
    f.avg_need_nm3 = draw(amounts)
    f.status = draw(st.sampled_from(list(Status)))
    return f


facility_lists = st.integers(0, 40).flatmap(lambda n: st.tuples(*[facility(i) for i in range(n)]))


@given(facility_lists)
@settings(max_examples=200, deadline=None)
def test_facilities_sum_to_provinces_and_provinces_to_nation(
    figs: tuple[FacilityFigures, ...],
) -> None:
    groups: dict[int | None, list[FacilityFigures]] = defaultdict(list)
    for f in figs:
        groups[f.parent_id].append(f)
    typed = [totals(g, CFG) for g in groups.values()]
    rows = [r.as_dict() for r in typed]
    nation = _add(typed, CFG).as_dict() if typed else None
    whole = totals(list(figs), CFG).as_dict()
    for key in ("expected", "reported", "on_time", "not_reported", "needs_more"):
        assert (nation[key] if nation else 0) == whole[key] == sum(r[key] for r in rows)
    # Reported sums: unknown (None) when no facility contributes, never 0.
    for key in ("patients_current", "patients_new", "discharged", "on_oxygen"):
        assert (
            (nation[key] if nation else None) == whole[key] == known_sum([r[key] for r in rows])[0]
        )
        n = whole["contributors"][key]
        assert n <= whole["reported"] and (whole[key] is None) == (n == 0)
        if nation:
            assert nation["contributors"][key] == n
    for key in (
        "stock_nm3",
        "usable_nm3",
        "need_nm3_per_day",
        "refilled_liquid_kg",
        "capacity_nm3",
    ):
        got = nation[key] if nation else None
        if whole[key] is None or got is None:
            assert got is None and (whole[key] is None or whole[key] == 0)
            continue
        assert abs(got - whole[key]) <= 1e-6 * max(1.0, abs(whole[key]))
    # Stock, usable stock and need: a facility with an unknown figure is left out and counted,
    # never added as 0; nobody with the figure makes the sum unknown.
    for key in ("stock_nm3", "usable_nm3", "need_nm3_per_day"):
        n = whole["contributors"][key]
        assert n <= whole["expected"] and (whole[key] is None) == (n == 0)
        if nation:
            assert nation["contributors"][key] == n
    # The SYT report of each parent agrees with that parent's row in the national view.
    for members in groups.values():
        fields = aggregate(members, CFG).model_dump(by_alias=True)
        row = totals(members, CFG).as_dict()
        assert (fields["5"], fields["6"], fields["7"]) == (
            row["patients_current"],
            row["patients_new"],
            row["discharged"],
        )
        assert fields["8"] == row["not_reported"] and fields["10"] == row["expected"]
        for got, want in (
            (fields["14"], row["need_reported_nm3_per_day"]),
            (fields["9"]["kg"], row["refilled_liquid_kg"]),
        ):
            assert (got is None) == (want is None)
            assert got is None or abs(got - want) <= 0.05 + 1e-9
        done = completeness(members)
        assert done["5"]["contributors"] == row["contributors"]["patients_current"]
        assert all(c["expected"] == len(members) for c in done.values())


# --------------------------------------------------------------------------------------------
# Against the database: who is expected on a day, and who may see whom.

MONTH_ENDS = [
    date(2024, 2, 29),
    date(2026, 2, 28),
    date(2026, 3, 1),
    date(2026, 3, 31),
    date(2026, 4, 1),
    date(2026, 12, 31),
    date(2027, 1, 1),
]
spans = st.tuples(
    st.sampled_from(MONTH_ENDS), st.integers(-2, 2), st.one_of(st.none(), st.integers(-2, 40))
)


async def _check(
    url: str,
    spans_: list[tuple[date, int, int | None]],
    day: date,
    visible_mask: list[bool],
    parent_pick: int,
) -> None:
    conn = await psycopg.AsyncConnection.connect(url)
    try:
        cur = await conn.execute(
            "SELECT id FROM organisations WHERE code IN ('SYT-01', 'SYT-79') ORDER BY code"
        )
        parents = [int(r[0]) for r in await cur.fetchall()]
        made = []
        for i, (anchor, shift, length) in enumerate(spans_):
            start = anchor + timedelta(days=shift)
            end = None if length is None else start + timedelta(days=max(0, length))
            parent = parents[i % 2]
            cur = await conn.execute(
                "INSERT INTO organisations (code, kind, name, province_code, parent_id) "
                "VALUES (%s, 'facility', %s, %s, %s) RETURNING id",
                (f"P{i}", f"P{i}", "01" if parent == parents[0] else "79", parent),
            )
            row = await cur.fetchone()
            assert row
            await conn.execute(
                "INSERT INTO facilities (org_id, active_from, active_to) VALUES (%s, %s, %s)",
                (row[0], start, end),
            )
            made.append((int(row[0]), parent, start, end))
        expected = {m[0] for m in made if m[2] <= day and (m[3] is None or m[3] >= day)}
        got = {r.id for r in await active_facilities(conn, day, parents=None, visible=None)}
        assert got == expected
        # A scoped caller (an SYT: only its facilities) never sees another one.
        visible = frozenset(m[0] for m, keep in zip(made, visible_mask, strict=False) if keep)
        parent = parents[parent_pick]
        scoped = await active_facilities(conn, day, parents=[parent], visible=visible)
        assert {r.id for r in scoped} == {
            m[0] for m in made if m[0] in expected and m[0] in visible and m[1] == parent
        }
        figs = await figures_for(conn, scoped, day, CFG)
        assert {f.facility_id for f in figs} <= visible
        # Asking for ids outside the scope returns nothing for them.
        outside = [m[0] for m in made if m[0] not in visible]
        assert await active_facilities(conn, day, parents=None, visible=visible, ids=outside) == []
    finally:
        await conn.rollback()
        await conn.close()


def test_national_stock_leaves_out_unknown_stock_instead_of_counting_zero() -> None:
    known, silent = FacilityFigures(1, "K", "K", 1, None), FacilityFigures(2, "S", "S", 1, None)
    known.stock_liquid_kg = known.usable_liquid_kg = 1429.0
    known.avg_need_nm3 = 500.0
    typed = totals([known, silent], CFG)
    row = typed.as_dict()
    assert row["stock_nm3"] == CFG.reference.kg_to_m3(1429.0)
    assert row["contributors"]["stock_nm3"] == 1 and row["contributors"]["usable_nm3"] == 1
    assert row["contributors"]["need_nm3_per_day"] == 1
    nobody_typed = totals([silent], CFG)
    nobody = nobody_typed.as_dict()
    assert nobody["stock_nm3"] is None and nobody["usable_nm3"] is None
    assert nobody["need_nm3_per_day"] is None and nobody["days_of_supply"] is None
    assert nobody["status"] == Status.UNKNOWN.value
    nation = _add([typed, nobody_typed], CFG).as_dict()
    assert nation["stock_nm3"] == row["stock_nm3"] and nation["contributors"]["stock_nm3"] == 1


@given(
    st.lists(spans, min_size=1, max_size=8),
    st.sampled_from(MONTH_ENDS),
    st.lists(st.booleans(), min_size=8, max_size=8),
    st.integers(0, 1),
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_expected_facilities_at_month_ends_and_scope(
    db_url: str, spans_: list[tuple[date, int, int | None]], day: date, mask: list[bool], pick: int
) -> None:
    asyncio.run(_check(db_url, spans_, day, mask, pick))


def test_every_message_has_a_vietnamese_translation() -> None:
    for key, english in MESSAGES.items():
        assert text(key, "en") == english
        assert text(key, "vi") != english, key
