"""The SYT report to BYT (seed fields 1–16): live figures, send (frozen revision), approve.

Fields 5–11, 13 and 14 are computed live from the facility reports of day D (and telemetry for
the facility list); 12 is the required situation notice; 15 and 16 are the SYT's own figures,
typed with an explicit unit. Sending freezes a snapshot as a revision; if facility reports change
afterwards the report is "changed since sent" with the differences. The SYT edits until BYT
approves (locks); BYT's "send back" reopens it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from api.accounting.config import AccountingConfig
from api.accounting.stock import Status
from api.accounting.telemetry import Source

from . import syt_fields
from .errors import Conflict, FieldError, Incomplete, Locked, ValidationFailed
from .facility import QuantityIn
from .figures import FacilityFigures, active_facilities, figures_for, known_sum
from .filters import StatusFilter, SytFilters
from .public import (
    CompletenessPublic,
    SytEnteredPublic,
    SytFieldsPublic,
)
from .rules import MAX_NM3
from .units import EntryUnit, to_nm3, unit_labels

logger = logging.getLogger(__name__)


# A department's own capacity / daily need (fields 15, 16): far above any province's figure
# (a thousand facilities at the facility limit) is a typing slip.
MAX_PROVINCE_NM3 = 1000 * MAX_NM3


class SytReportIn(BaseModel):
    """What the SYT types: notice (12), own capacity (15) and daily need (16), filters."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    notice: Annotated[str | None, Field(max_length=20000)] = None
    own_capacity: QuantityIn | None = None
    own_need: QuantityIn | None = None
    filters: SytFilters = Field(default_factory=SytFilters)


class SendBackIn(BaseModel):
    """BYT's reason for sending a report back."""

    reason: str


# The per-facility figures compared between a sent snapshot and the live figures.
COMPARED = (
    "reported",
    "patients_current",
    "patients_new",
    "discharged",
    "refilled_liquid_kg",
    "refilled_gas_nm3",
    "capacity_nm3",
    "avg_need_nm3",
    "status",
)


def _r(v: float | None, digits: int = 1) -> float | None:
    return None if v is None else round(v, digits)


@dataclass(frozen=True, slots=True, kw_only=True)
class SytLive:
    """The live figures of an SYT report for day D: fields 5–11, 13, 14 and the facilities."""

    org_id: int
    report_day: date
    filters: SytFilters
    fields: SytFieldsPublic
    completeness: dict[str, CompletenessPublic]
    facilities: list[FacilityFigures]
    units: dict[str, str]
    entered: SytEnteredPublic | None = None  # fields 12, 15, 16 (the figures alone: None)

    def document(self, entered: dict[str, Any] | None = None) -> dict[str, Any]:
        """The figures as a revision's snapshot stores them (JSON, seed fields by number), with
        the SYT's fields 12, 15, 16 as stored when given (:func:`entered`)."""
        out: dict[str, Any] = {
            "org_id": self.org_id,
            "report_day": self.report_day.isoformat(),
            "filters": self.filters.model_dump(mode="json"),
            "fields": self.fields.model_dump(mode="json", by_alias=True),
            "completeness": {k: c.model_dump() for k, c in self.completeness.items()},
            "facilities": [f.as_dict() for f in self.facilities],
            "units": dict(self.units),
        }
        if entered is not None:
            out["entered"] = entered
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SytSnapshot(SytLive):
    """The copy of an SYT report sent to BYT, read back from its revision (append-only)."""

    revision: int
    sent_at: str  # ISO 8601 instant
    document_sent: dict[str, Any]  # the stored JSON with revision and sent_at (the API's copy)


@dataclass(frozen=True, slots=True)
class SytChange:
    """One difference between the copy sent and the live report (values as `_flat` reads them:
    a number, a text, or a quantity as typed)."""

    item: str  # entered.<no>[.<part>], field.<no>[.<part>] or facility.<code>.<figure>
    sent: JsonValue
    now: JsonValue


@dataclass(frozen=True, slots=True)
class SytRevision:
    """One revision of an SYT report (append-only history)."""

    revision: int
    action: str
    author: str
    created_at: str  # ISO 8601 instant
    # save, approve, send back: {field: [before, after]}; send: the changes from the copy sent
    # before (a list of SytChange as JSON), as stored.
    diff: JsonValue
    note: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SytReport(SytLive):
    """An SYT report for day D: live figures, entered fields, state, changes and history.

    `id` is None for a report never saved; it then has no dates (left out of the answer)."""

    state: str
    revision: int
    locked: str | None  # why it cannot be changed (message id)
    changed_since_sent: bool | None
    changes: list[SytChange]
    as_sent: SytSnapshot | None
    revisions: list[SytRevision]
    id: int | None = None
    sent_at: str | None = None
    approved_at: str | None = None
    sent_back_reason: str | None = None


@dataclass(frozen=True, slots=True)
class SentReport:
    """An SYT report that was sent to BYT, with its state and number of revisions."""

    id: int
    org_id: int
    org_name: str
    report_day: date
    state: str
    revision: int
    sent_at: datetime | None
    sent_by: str | None
    approved_at: datetime | None
    approved_by: str | None
    sent_back_at: datetime | None
    sent_back_reason: str | None
    revisions: int


def _as_sent(last: dict[str, Any]) -> SytSnapshot:
    """The last copy sent (a row of `_LAST_SENT`), typed; its stored JSON kept for the API."""
    snap = last["snapshot"]
    sent_at = last["created_at"].isoformat()
    return SytSnapshot(
        org_id=snap["org_id"],
        report_day=date.fromisoformat(snap["report_day"]),
        filters=SytFilters.model_validate(snap["filters"]),
        fields=SytFieldsPublic.model_validate(snap["fields"]),
        completeness={
            k: CompletenessPublic.model_validate(c)
            for k, c in (snap.get("completeness") or {}).items()
        },
        facilities=[FacilityFigures.stored(f) for f in snap["facilities"]],
        units=snap.get("units") or {},
        entered=SytEnteredPublic.model_validate(snap["entered"]) if snap.get("entered") else None,
        revision=last["revision"],
        sent_at=sent_at,
        document_sent={"revision": last["revision"], "sent_at": sent_at, **snap},
    )


def _sums(figs: Sequence[FacilityFigures]) -> dict[str, tuple[float | None, int]]:
    """Each summed seed field (api.reports.syt_fields) over the facilities that reported it."""
    rep = [f for f in figs if f.reported]
    return {
        f.no: known_sum([f.per_facility(x) for x in rep])
        for f in syt_fields.SUMMED
        if f.per_facility is not None
    }


def completeness(figs: Sequence[FacilityFigures]) -> dict[str, dict[str, int]]:
    """Per summed seed field: how many facilities contribute a figure (`contributors`) out of how
    many are expected (`expected`: every active facility of the department)."""
    return {k: {"contributors": n, "expected": len(figs)} for k, (_v, n) in _sums(figs).items()}


def incomplete(snapshot: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The seed fields of a report (live or as sent) whose sums leave out an expected facility."""
    return {
        k: c
        for k, c in (snapshot.get("completeness") or {}).items()
        if c["contributors"] < c["expected"]
    }


def missing(completeness: Mapping[str, CompletenessPublic]) -> dict[str, CompletenessPublic]:
    """`incomplete` of a typed report's completeness (live, or the copy sent)."""
    return {k: c for k, c in completeness.items() if c.contributors < c.expected}


def aggregate(
    figs: Sequence[FacilityFigures],
    cfg: AccountingConfig,
    every: Sequence[FacilityFigures] | None = None,
) -> SytFieldsPublic:
    """Seed fields 5–11, 13, 14 over the facility figures (sums over those that reported), each
    from its row of the field table (api.reports.syt_fields); the department's counts (8, 10)
    over `every` facility expected that day (default: `figs`).

    A sum of nothing is unknown (None), never 0: see :func:`completeness` for how many
    facilities each sum stands for. Built by seed number (the table's key): pydantic refuses a
    field missing from the table.
    """
    sums = _sums(figs)
    whole = figs if every is None else every
    return SytFieldsPublic.model_validate(
        {
            f.no: f.value(
                sums.get(f.no, (None, 0))[0],
                whole if f.source is syt_fields.FieldSource.DEPARTMENT else figs,
                cfg,
            )
            for f in syt_fields.FIELDS
            if f.value is not None
        }
    )


def _status_ok(f: FacilityFigures, wanted: StatusFilter) -> bool:
    if wanted is StatusFilter.ALL:
        return True
    return f.status is (Status.ENOUGH if wanted is StatusFilter.ENOUGH else Status.NEEDS_MORE)


async def compute(
    conn: AsyncConnection[Any],
    org_id: int,
    day: date,
    filters: SytFilters,
    *,
    visible: frozenset[int] | None,
    cfg: AccountingConfig,
    now: datetime | None = None,
    source: Source = Source.STORED,
) -> SytLive:
    """The live figures of the SYT report for D (fields 5–11, 13, 14 and the facility list).

    Fields 8 and 10 are the department's totals (facilities not reported / all facilities
    expected that day), whatever the status filter or the facility selection shows."""
    refs = await active_facilities(conn, day, parents=[org_id], visible=visible)
    every = await figures_for(conn, refs, day, cfg, source=source, now=now)
    chosen = set(filters.facility_ids) if filters.facility_ids is not None else None
    figs = [
        f
        for f in every
        if (chosen is None or f.facility_id in chosen) and _status_ok(f, filters.status)
    ]
    return SytLive(
        org_id=org_id,
        report_day=day,
        filters=filters,
        fields=aggregate(figs, cfg, every),
        completeness={
            k: CompletenessPublic(contributors=c["contributors"], expected=c["expected"])
            for k, c in completeness(figs).items()
        },
        facilities=figs,
        units=unit_labels(cfg.reference),
    )


_GET = "SELECT * FROM syt_reports WHERE org_id = %(org)s AND report_day = %(day)s"
_GET_ID = "SELECT * FROM syt_reports WHERE id = %(id)s"
_ENSURE = """
INSERT INTO syt_reports (org_id, report_day) VALUES (%(org)s, %(day)s)
ON CONFLICT (org_id, report_day) DO NOTHING
"""
_LOCK_ROW = "SELECT * FROM syt_reports WHERE org_id = %(org)s AND report_day = %(day)s FOR UPDATE"
_SAVE = """
UPDATE syt_reports SET notice = %(notice)s, own_capacity_nm3 = %(cap)s,
    own_capacity_entry = %(cap_entry)s, own_need_nm3 = %(need)s, own_need_entry = %(need_entry)s,
    filters = %(filters)s, revision = %(revision)s, updated_at = %(now)s
WHERE id = %(id)s
"""
_SET_STATE = """
UPDATE syt_reports SET state = %(state)s, revision = %(revision)s, updated_at = %(now)s,
    sent_at = CASE WHEN %(state)s = 'sent' THEN %(now)s ELSE sent_at END,
    sent_by = CASE WHEN %(state)s = 'sent' THEN %(author)s ELSE sent_by END,
    approved_at = CASE WHEN %(state)s = 'approved' THEN %(now)s ELSE approved_at END,
    approved_by = CASE WHEN %(state)s = 'approved' THEN %(author)s ELSE approved_by END,
    sent_back_at = CASE WHEN %(state)s = 'sent_back' THEN %(now)s ELSE sent_back_at END,
    sent_back_by = CASE WHEN %(state)s = 'sent_back' THEN %(author)s ELSE sent_back_by END,
    sent_back_reason = CASE WHEN %(state)s = 'sent_back' THEN %(note)s ELSE sent_back_reason END
WHERE id = %(id)s
"""
_REVISION = """
INSERT INTO syt_report_revisions (report_id, revision, action, author, created_at, snapshot,
                                  diff, note)
VALUES (%(id)s, %(revision)s, %(action)s, %(author)s, %(now)s, %(snapshot)s, %(diff)s, %(note)s)
"""
_REVISIONS = """
SELECT revision, action, author, created_at, snapshot, diff, note
FROM syt_report_revisions WHERE report_id = %(id)s ORDER BY revision
"""
_LAST_SENT = """
SELECT revision, created_at, snapshot FROM syt_report_revisions
WHERE report_id = %(id)s AND action = 'send' ORDER BY revision DESC LIMIT 1
"""
_LIST = """
SELECT r.id, r.org_id, o.name AS org_name, r.report_day, r.state, r.revision, r.sent_at,
       r.sent_by, r.approved_at, r.approved_by, r.sent_back_at, r.sent_back_reason,
       (SELECT count(*) FROM syt_report_revisions v WHERE v.report_id = r.id) AS revisions
FROM syt_reports r JOIN organisations o ON o.id = r.org_id
WHERE (%(parents)s::bigint[] IS NULL OR r.org_id = ANY(%(parents)s::bigint[]))
  AND r.sent_at IS NOT NULL
  AND (%(first)s::date IS NULL OR r.report_day >= %(first)s)
  AND (%(last)s::date IS NULL OR r.report_day <= %(last)s)
ORDER BY r.report_day DESC, o.name
LIMIT 1000
"""


def entered(row: dict[str, Any]) -> dict[str, Any]:
    """Fields 12, 15, 16 as stored (canonical values and what was typed): the JSON of a
    snapshot and of the audit trail."""
    return {
        "12": row["notice"],
        "15": {"nm3": row["own_capacity_nm3"], "entered": row["own_capacity_entry"]},
        "16": {"nm3_per_day": row["own_need_nm3"], "entered": row["own_need_entry"]},
    }


def entered_fields(row: dict[str, Any]) -> SytEnteredPublic:
    """Fields 12, 15, 16 of a report row, typed."""
    return SytEnteredPublic.model_validate(entered(row))


def lock_reason(row: dict[str, Any] | None) -> str | None:
    """Why the SYT report cannot be changed (i18n key), or None."""
    return "syt.locked.approved" if row is not None and row["state"] == "approved" else None


def _flat(snapshot: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # The SYT's own fields (12, 15, 16) count as much as the computed ones.
    for k, v in (snapshot.get("entered") or {}).items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                out[f"entered.{k}.{k2}"] = _r(v2) if isinstance(v2, float) else v2
        else:
            out[f"entered.{k}"] = v
    for k, v in snapshot.get("fields", {}).items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                out[f"field.{k}.{k2}"] = v2
        else:
            out[f"field.{k}"] = v
    for f in snapshot.get("facilities", []):
        for k in COMPARED:
            v = f.get(k)
            out[f"facility.{f['code']}.{k}"] = _r(v) if isinstance(v, float) else v
    return out


def changes(sent: dict[str, Any], live: dict[str, Any]) -> list[dict[str, Any]]:
    """Differences between a sent snapshot and the live figures (what changed since sending)."""
    a, b = _flat(sent), _flat(live)
    return [
        {"item": k, "sent": a.get(k), "now": b.get(k)}
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


async def live_snapshot(
    conn: AsyncConnection[Any],
    row: dict[str, Any],
    *,
    visible: frozenset[int] | None,
    cfg: AccountingConfig,
    now: datetime,
) -> dict[str, Any]:
    """What sending the report now would freeze: the live figures with the report's own filters,
    and the SYT's fields 12, 15, 16."""
    live = await compute(
        conn,
        row["org_id"],
        row["report_day"],
        SytFilters.model_validate(row["filters"] or {}),
        visible=visible,
        cfg=cfg,
        now=now,
    )
    return live.document(entered(row))


async def last_sent(conn: AsyncConnection[Any], report_id: int) -> dict[str, Any] | None:
    """The last copy sent to BYT (revision, created_at, snapshot), or None."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LAST_SENT, {"id": report_id})
        return await cur.fetchone()


async def _row(conn: AsyncConnection[Any], org_id: int, day: date) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_GET, {"org": org_id, "day": day})
        return await cur.fetchone()


async def _locked_row(conn: AsyncConnection[Any], org_id: int, day: date) -> dict[str, Any]:
    await conn.execute(_ENSURE, {"org": org_id, "day": day})
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LOCK_ROW, {"org": org_id, "day": day})
        row = await cur.fetchone()
    assert row is not None
    return row


async def _revision(
    conn: AsyncConnection[Any],
    row: dict[str, Any],
    action: str,
    *,
    author: str,
    now: datetime,
    snapshot: dict[str, Any],
    diff: Any,
    note: str | None = None,
) -> int:
    revision = int(row["revision"]) + 1
    await conn.execute(
        _REVISION,
        {
            "id": row["id"],
            "revision": revision,
            "action": action,
            "author": author,
            "now": now,
            "snapshot": Jsonb(snapshot),
            "diff": Jsonb(diff),
            "note": note,
        },
    )
    return revision


def _quantity(
    name: str, q: QuantityIn | None, cfg: AccountingConfig, errors: list[FieldError]
) -> float | None:
    if q is None:
        return None
    if q.value < 0:
        errors.append(FieldError(name, "report.error.negative"))
        return None
    value = to_nm3(q.value, EntryUnit(q.unit), cfg.reference)
    if value > MAX_PROVINCE_NM3:
        errors.append(FieldError(name, "report.error.too_large"))
        return None
    return value


@dataclass(frozen=True, slots=True)
class SytStateChange:
    """An SYT report after a save or a send: its new revision and its state."""

    id: int
    revision: int
    state: str


@dataclass(frozen=True, slots=True)
class SytSaved(SytStateChange):
    """A save, with the SYT's fields it replaced and stored (for the audit trail)."""

    before: dict[str, JsonValue]
    after: dict[str, JsonValue]


@dataclass(frozen=True, slots=True)
class SytDecision(SytStateChange):
    """BYT's decision on a sent report (state approved or sent_back)."""

    org_id: int
    report_day: date


async def save(
    conn: AsyncConnection[Any],
    org_id: int,
    day: date,
    body: SytReportIn,
    *,
    author: str,
    cfg: AccountingConfig,
    now: datetime,
) -> SytSaved:
    """Save fields 12, 15, 16 and the filters (a revision); refused once approved."""
    errors: list[FieldError] = []
    if "\x00" in (body.notice or ""):
        errors.append(FieldError("notice", "report.error.invalid_text"))
    cap = _quantity("own_capacity", body.own_capacity, cfg, errors)
    need = _quantity("own_need", body.own_need, cfg, errors)
    if errors:
        raise ValidationFailed(errors)
    async with conn.transaction():
        row = await _locked_row(conn, org_id, day)
        if (lock := lock_reason(row)) is not None:
            raise Locked(lock)
        before = entered(row) | {"filters": row["filters"]}
        new = {
            "notice": body.notice,
            "cap": cap,
            "need": need,
            "cap_entry": Jsonb(body.own_capacity.model_dump(mode="json"))
            if body.own_capacity
            else None,
            "need_entry": Jsonb(body.own_need.model_dump(mode="json")) if body.own_need else None,
            "filters": Jsonb(body.filters.model_dump(mode="json")),
        }
        after: dict[str, JsonValue] = {
            "12": body.notice,
            "15": {
                "nm3": cap,
                "entered": body.own_capacity.model_dump(mode="json") if body.own_capacity else None,
            },
            "16": {
                "nm3_per_day": need,
                "entered": body.own_need.model_dump(mode="json") if body.own_need else None,
            },
            "filters": body.filters.model_dump(mode="json"),
        }
        diff = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
        revision = await _revision(
            conn, row, "save", author=author, now=now, snapshot=after, diff=diff
        )
        await conn.execute(_SAVE, {**new, "revision": revision, "now": now, "id": row["id"]})
    logger.info("SYT report %s/%s saved by %s (revision %s)", org_id, day, author, revision)
    return SytSaved(row["id"], revision, row["state"], before=before, after=after)


async def send(
    conn: AsyncConnection[Any],
    org_id: int,
    day: date,
    *,
    author: str,
    visible: frozenset[int] | None,
    cfg: AccountingConfig,
    now: datetime,
    confirm_incomplete: bool = False,
) -> SytStateChange:
    """Send to BYT: freeze the live figures with fields 12, 15, 16 as a new revision.

    Figures that leave out a facility (see :func:`incomplete`) are sent only when the sender
    confirms it (`confirm_incomplete`), else :class:`Incomplete` lists them."""
    async with conn.transaction():
        row = await _locked_row(conn, org_id, day)
        if (lock := lock_reason(row)) is not None:
            raise Locked(lock)
        if not (row["notice"] or "").strip():
            raise ValidationFailed([FieldError("notice", "syt.error.notice_required")])
        snapshot = await live_snapshot(conn, row, visible=visible, cfg=cfg, now=now)
        if (missing := incomplete(snapshot)) and not confirm_incomplete:
            raise Incomplete(missing)
        last = await last_sent(conn, row["id"])
        diff = changes(last["snapshot"], snapshot) if last else []
        revision = await _revision(
            conn, row, "send", author=author, now=now, snapshot=snapshot, diff=diff
        )
        await conn.execute(
            _SET_STATE,
            {
                "state": "sent",
                "revision": revision,
                "now": now,
                "author": author,
                "note": None,
                "id": row["id"],
            },
        )
    logger.info("SYT report %s/%s sent by %s (revision %s)", org_id, day, author, revision)
    return SytStateChange(row["id"], revision, "sent")


async def decide(
    conn: AsyncConnection[Any],
    report_id: int,
    *,
    approve: bool,
    author: str,
    reason: str | None,
    now: datetime,
    cfg: AccountingConfig,
    confirm_incomplete: bool = False,
) -> SytDecision:
    """BYT approves (locks) or sends back (reopens) a sent report.

    Only what was sent can be approved: a report whose figures or fields changed since it was
    sent must be sent again first; one sent with incomplete figures only with
    `confirm_incomplete` (else :class:`Incomplete`)."""
    if not approve and not (reason or "").strip():
        raise ValidationFailed([FieldError("reason", "syt.error.reason_required")])
    async with conn.transaction():
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_GET_ID + " FOR UPDATE", {"id": report_id})
            row = await cur.fetchone()
        if row is None:
            raise LookupError(report_id)
        if row["state"] != "sent":
            raise Conflict("syt.error.not_sent")
        if approve:
            last = await last_sent(conn, report_id)
            live = await live_snapshot(conn, row, visible=None, cfg=cfg, now=now)
            if last is None or changes(last["snapshot"], live):
                raise Conflict("syt.error.changed_since_sent")
            if (missing := incomplete(last["snapshot"])) and not confirm_incomplete:
                raise Incomplete(missing)
        state = "approved" if approve else "sent_back"
        revision = await _revision(
            conn,
            row,
            "approve" if approve else "send_back",
            author=author,
            now=now,
            snapshot={"state": state},
            diff={"state": [row["state"], state]},
            note=reason,
        )
        await conn.execute(
            _SET_STATE,
            {
                "state": state,
                "revision": revision,
                "now": now,
                "author": author,
                "note": reason,
                "id": report_id,
            },
        )
    logger.info("SYT report %s %s by %s", report_id, state, author)
    return SytDecision(
        report_id, revision, state, org_id=row["org_id"], report_day=row["report_day"]
    )


async def report_org(conn: AsyncConnection[Any], report_id: int) -> tuple[int, date] | None:
    """(org_id, report_day) of a report id, for scope checks."""
    cur = await conn.execute(
        "SELECT org_id, report_day FROM syt_reports WHERE id = %(id)s", {"id": report_id}
    )
    row = await cur.fetchone()
    return (int(row[0]), row[1]) if row else None


async def details(
    conn: AsyncConnection[Any],
    org_id: int,
    day: date,
    *,
    visible: frozenset[int] | None,
    cfg: AccountingConfig,
    now: datetime,
    filters: SytFilters | None = None,
) -> SytReport:
    """Live figures, entered fields, state, lock reason, changes since sent and the history."""
    row = await _row(conn, org_id, day)
    use = filters or (
        SytFilters.model_validate(row["filters"]) if row and row["filters"] else SytFilters()
    )
    live = await compute(conn, org_id, day, use, visible=visible, cfg=cfg, now=now)
    shared = {f.name: getattr(live, f.name) for f in dataclasses.fields(SytLive)}
    if row is None:
        return SytReport(
            **shared,
            state="draft",
            revision=0,
            locked=None,
            changed_since_sent=None,
            changes=[],
            as_sent=None,
            revisions=[],
        )
    last = await last_sent(conn, row["id"])
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_REVISIONS, {"id": row["id"]})
        revs = await cur.fetchall()
    diffs: list[dict[str, Any]] = []
    if last is not None:
        # Compared with the report's own filters, whatever the page filters by.
        now_snap = (
            live.document(entered(row))
            if use == SytFilters.model_validate(row["filters"] or {})
            else await live_snapshot(conn, row, visible=visible, cfg=cfg, now=now)
        )
        diffs = changes(last["snapshot"], now_snap)
    shared["entered"] = entered_fields(row)
    return SytReport(
        **shared,
        id=row["id"],
        state=row["state"],
        revision=row["revision"],
        locked=lock_reason(row),
        sent_at=row["sent_at"].isoformat() if row["sent_at"] else None,
        approved_at=row["approved_at"].isoformat() if row["approved_at"] else None,
        sent_back_reason=row["sent_back_reason"],
        changed_since_sent=bool(diffs) if last else None,
        changes=[SytChange(d["item"], d["sent"], d["now"]) for d in diffs],
        # The copy that was sent, whole (immutable: revisions are append-only).
        as_sent=_as_sent(last) if last else None,
        revisions=[
            SytRevision(
                revision=r["revision"],
                action=r["action"],
                author=r["author"],
                created_at=r["created_at"].isoformat(),
                diff=r["diff"],
                note=r["note"],
            )
            for r in revs
        ],
    )


async def sent_list(
    conn: AsyncConnection[Any],
    *,
    parents: frozenset[int] | None,
    first: date | None = None,
    last: date | None = None,
) -> list[SentReport]:
    """Reports that were sent to BYT, newest first, within the caller's reporting parents."""
    async with conn.cursor(row_factory=class_row(SentReport)) as cur:
        await cur.execute(
            _LIST,
            {
                "parents": sorted(parents) if parents is not None else None,
                "first": first,
                "last": last,
            },
        )
        return await cur.fetchall()
