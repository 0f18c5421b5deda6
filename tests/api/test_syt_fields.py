"""The declarative table of SYT seed fields (api.reports.syt_fields) drives the aggregate, the
completeness, the composer cards, the print page and the PDF; no template spells a field."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from api.accounting.config import AccountingConfig
from api.i18n import gettext
from api.reports import layout, syt_fields
from api.reports.figures import FacilityFigures
from api.reports.filters import SytFilters
from api.reports.public import EnteredCapacityPublic, EnteredNeedPublic, SytEnteredPublic
from api.reports.syt import SytLive, aggregate, completeness
from api.reports.units import unit_labels
from api.web.templating import environment

CFG = AccountingConfig.defaults()
API = Path(__file__).parents[2] / "api"


def _figs() -> list[FacilityFigures]:
    a = FacilityFigures(1, "A", "BV A", 9, None)
    a.reported, a.patients_current, a.refilled_liquid_kg = True, 12, 1141.0
    a.capacity_nm3, a.registry_capacity_nm3, a.avg_need_nm3 = 7000.0, 7000.0, 350.0
    b = FacilityFigures(2, "B", "BV B", 9, None)  # has not reported
    b.registry_capacity_nm3 = 3000.0
    return [a, b]


def _report() -> SytLive:
    figs = _figs()
    return SytLive(
        org_id=9,
        report_day=date(2026, 3, 2),
        filters=SytFilters(),
        fields=aggregate(figs, CFG),
        completeness={},
        facilities=figs,
        units=unit_labels(CFG.reference),
        entered=SytEnteredPublic(
            notice="Ổn định",
            own_capacity=EnteredCapacityPublic(nm3=1000.0, entered=None),
            own_need=EnteredNeedPublic(nm3_per_day=90.0, entered=None),
        ),
    )


def test_the_table_is_the_seed_form_in_order_with_translated_labels() -> None:
    assert [f.no for f in syt_fields.FIELDS] == [str(n) for n in range(1, 17) if n != 4]
    for f in syt_fields.FIELDS:
        assert gettext("vi", f.label) != f.label, f.label  # every label is in the catalog


def test_aggregate_and_completeness_follow_the_table() -> None:
    figs = _figs()
    typed = aggregate(figs, CFG)
    fields = typed.model_dump(by_alias=True)
    assert list(fields) == [f.no for f in syt_fields.FIELDS if f.value is not None]
    assert set(completeness(figs)) == {f.no for f in syt_fields.SUMMED}
    assert fields["5"] == 12 and fields["8"] == 1 and fields["10"] == 2
    assert typed.current_patients == 12 and typed.not_reported == 1 and typed.facilities == 2
    assert fields["9"] == {"kg": 1141.0, "m3_liquid": 1.0, "nm3": fields["9"]["nm3"]}
    assert typed.refilled_liquid.nm3 == round(CFG.reference.kg_to_m3(1141.0), 1)
    assert fields["13"] == {"reporting_nm3": 7000.0, "registry_all_nm3": 10000.0}
    assert fields["6"] is None and fields["11"] is None  # nobody reported them: unknown, not 0
    assert completeness(figs)["5"] == {"contributors": 1, "expected": 2}
    # The department's counts (8, 10) are over every facility expected, not the ones shown.
    only_a = aggregate(figs[:1], CFG, every=figs)
    assert only_a.not_reported == 1 and only_a.facilities == 2
    assert only_a.capacity.registry_all_nm3 == 7000.0  # the facilities shown


def test_print_pdf_and_cards_read_the_same_rows() -> None:
    rep = _report()
    rows = layout.field_rows(rep, "vi")
    assert rows == syt_fields.rows(rep, "vi")
    by_no = {no: (label, value) for no, label, value in rows}
    gas = CFG.reference.label
    assert by_no["9"][0] == gettext("vi", "Liquid oxygen refilled")
    nm3 = syt_fields.num(rep.fields.refilled_liquid.nm3, "vi")
    assert by_no["9"][1] == f"1,00 {gettext('vi', 'm3 liquid')} = 1.141 kg ≈ {nm3} {gas}"
    assert by_no["6"][1] == "—" and by_no["12"][1] == "Ổn định"
    cards = syt_fields.cards(rep, "vi")
    assert [c[0] for c in cards] == ["5", "6", "7", "8", "9", "10", "11", "13", "14"]
    # A card's value and detail are the printed line, split.
    nine = next(c for c in cards if c[0] == "9")
    assert f"{nine[2]} {nine[3]}" == by_no["9"][1]
    html = (
        environment()
        .from_string(
            '{% from "reports/_syt_fields.html" import computed_fields %}{{ computed_fields(r) }}'
        )
        .render(r=rep, locale="vi")
    )
    assert 'data-field="9">1,00 ' in html and by_no["13"][0] in html


def test_no_template_spells_a_field_label() -> None:
    shared = (API / "reports" / "templates" / "_syt_fields.html").read_text(encoding="utf-8")
    for f in syt_fields.FIELDS:
        if f.card:
            assert f'"{f.label}"' not in shared, f.no
