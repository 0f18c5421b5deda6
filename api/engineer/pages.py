"""Engineers' pages: the gateways they look after, one gateway, and a tank's diagnostics.

Every page declares its policy; the gateway and tank pages carry the facility in their path
(scope FACILITY), and the queries check that the gateway or tank belongs to that facility, so an
engineer assigned to some facilities never sees another's gateways."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from api.db import fetch_all, fetch_one
from api.deps import DbDep, LocaleDep, NowDep, PrincipalDep
from api.policy import Scope, policy
from api.scope import Principal, Role, scope_params
from api.web import page_exports
from api.web.templating import render

from . import queries as q
from .actions import gateway_alarms, tank_alarms

router = APIRouter(include_in_schema=False)

ROLES = (Role.ENGINEER, Role.ADMIN)
# A gateway silent this long counts as offline even without its Will: the same threshold as
# the Grafana gateway dashboard (dashboards/gateways.py SILENT_AFTER_S).
SILENT_AFTER = timedelta(seconds=600)
# A silence between two readings of a sensor longer than this (or three times the sensor's usual
# interval, when longer) is a gap: gateways poll every few seconds and publish every minute.
GAP = timedelta(minutes=5)
QUALITY = {0: "good", 1: "stale", 2: "out_of_range", 3: "comm_error"}
HISTORY_ROWS = 20
LIST_ROWS = 50
HoursQ = Annotated[int, Query(ge=1, le=168, description="Hours of history (default 48)")]


def grafana_link(request: Request, uid: str, **variables: Any) -> str | None:
    """The Grafana dashboard `uid` with its template variables set, or None without Grafana."""
    base = str(getattr(request.app.state.settings, "grafana_url", "") or "").rstrip("/")
    if not base:
        return None
    query = urlencode([(f"var-{k}", v) for k, v in variables.items() if v is not None])
    return f"{base}/d/{uid}?{query}" if query else f"{base}/d/{uid}"


def connection_state(gw: dict[str, Any], now: datetime) -> str:
    """online / offline / silent (born online, quiet too long) / unknown (never heard)."""
    if gw.get("last_seen") is None:
        return "unknown"
    if gw.get("online") is False:
        return "offline"
    if now - gw["last_seen"] > SILENT_AFTER:
        return "silent"
    return "online" if gw.get("online") else "unknown"


def _devices(gw: dict[str, Any]) -> list[dict[str, Any]]:
    devices = gw.get("devices")
    return [d for d in devices if isinstance(d, dict)] if isinstance(devices, list) else []


def _decorate(gw: dict[str, Any], now: datetime) -> dict[str, Any]:
    devices = _devices(gw)
    alarms = gw.get("alarms")
    return {
        **gw,
        "state": connection_state(gw, now),
        "device_list": devices,
        "devices_failing": sum(1 for d in devices if d.get("state") == "failing"),
        "alarm_list": [str(a) for a in alarms] if isinstance(alarms, list) else [],
    }


def _sensor(row: dict[str, Any]) -> dict[str, Any]:
    quality = row.get("quality")
    return {**row, "quality_name": QUALITY.get(quality) if quality is not None else None}


async def _gateways(
    conn: Any,
    me: Principal,
    now: datetime,
    *,
    gateway: int | None = None,
    facility: int | None = None,
) -> list[dict[str, Any]]:
    rows = await fetch_all(conn, q.GATEWAYS, **scope_params(me), gateway=gateway, facility=facility)
    return [_decorate(r, now) for r in rows]


@router.get("/gateways", dependencies=[policy(roles=ROLES, scope=Scope.NATIONAL)])
async def gateways_page(
    *, request: Request, conn: DbDep, me: PrincipalDep, locale: LocaleDep, now: NowDep
) -> Response:
    """The gateways of the caller's facilities: connection, outbox, evictions, versions, devices."""
    rows = await _gateways(conn, me, now)
    if kind := page_exports.requested(request):
        out = page_exports.gateway_rows(rows, locale)
        cols = page_exports.ENGINEER_GATEWAY_COLUMNS
        return page_exports.download(kind, "gateways", cols, out, locale=locale)
    counts = {s: sum(1 for r in rows if r["state"] == s) for s in ("online", "offline", "silent")}
    return render(
        request,
        "engineer/eng_gateways.html",
        {
            "gateways": rows,
            "counts": counts,
            "grafana": grafana_link(request, "oxy-gateways"),
            "now": now,
        },
        locale=locale,
        principal=me,
    )


@router.get(
    "/facilities/{facility_id}/gateways/{gateway_id}",
    dependencies=[policy(roles=ROLES, scope=Scope.FACILITY)],
)
async def gateway_page(
    *,
    request: Request,
    facility_id: int,
    gateway_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    now: NowDep,
) -> Response:
    """One gateway: status, Modbus devices, the last reading of each sensor, history,
    quarantined readings; `?format=csv|xlsx` the sensors and their last reading as a file."""
    rows = await _gateways(conn, me, now, gateway=gateway_id, facility=facility_id)
    if not rows:
        raise HTTPException(404, "not found")
    gw = rows[0]
    sensors = [_sensor(s) for s in await fetch_all(conn, q.SENSORS, gateway=gateway_id, tank=None)]
    if kind := page_exports.requested(request):
        return page_exports.download(
            kind,
            f"sensors-{gw['code']}",
            page_exports.SENSOR_COLUMNS,
            page_exports.sensor_rows(sensors, locale),
            locale=locale,
        )
    here = f"/facilities/{facility_id}/gateways/{gateway_id}"
    return render(
        request,
        "engineer/eng_gateway.html",
        {
            "gw": gw,
            "here": here,
            "alarms": await gateway_alarms(conn, facility_id, gateway_id, locale),
            "sensors": sensors,
            "history": await fetch_all(conn, q.HISTORY, gateway=gateway_id, limit=HISTORY_ROWS),
            "quarantine": await fetch_all(
                conn, q.QUARANTINE_OF_GATEWAY, code=gw["code"], limit=LIST_ROWS
            ),
            "grafana": grafana_link(
                request, "oxy-gateways", province=gw["province_code"], facility=facility_id
            ),
            "now": now,
        },
        locale=locale,
        principal=me,
    )


def _hourly(rows: list[dict[str, Any]], since: datetime, hours: int) -> list[dict[str, Any]]:
    """One row per hour (newest first), quantities side by side; an hour without any reading
    is kept (as a gap), never dropped."""
    by_hour: dict[datetime, dict[str, Any]] = {}
    for r in rows:
        h = by_hour.setdefault(r["bucket"], {"bucket": r["bucket"], "n": 0, "good": 0, "bad": 0})
        h["n"] += r["n"]
        h["good"] += r["good"]
        h["bad"] += r["stale"] + r["out_of_range"] + r["comm_error"]
        h[r["quantity"]] = r["last_good"]
        if r["quantity"] == "dp":
            h["contents_kg"] = r["contents_kg"]
    out = []
    start = since.replace(minute=0, second=0, microsecond=0)
    for i in range(hours):
        t = start + timedelta(hours=i)
        out.append(by_hour.get(t, {"bucket": t, "n": 0, "good": 0, "bad": 0}))
    for r in out:
        r["good_pct"] = round(100.0 * r["good"] / r["n"], 1) if r["n"] else None
    return list(reversed(out))


@router.get(
    "/facilities/{facility_id}/tanks/{tank_id}/diagnostics",
    dependencies=[policy(roles=ROLES, scope=Scope.FACILITY)],
)
async def tank_diagnostics(
    *,
    request: Request,
    facility_id: int,
    tank_id: int,
    conn: DbDep,
    me: PrincipalDep,
    locale: LocaleDep,
    now: NowDep,
    hours: HoursQ = 48,
) -> Response:
    """A tank's sensors: DP, head pressure and contents per hour with the readings' quality,
    gaps, conflicting readings and quarantined ones."""
    tank = await fetch_one(conn, q.TANK, tank=tank_id, facility=facility_id)
    if tank is None:
        raise HTTPException(404, "not found")
    until = now
    since = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    window = {"tank": tank_id, "since": since, "until": until}
    gaps = await fetch_all(conn, q.GAPS, **window, gap=GAP, limit=LIST_ROWS)
    open_gaps = [
        {"sensor": r["sensor"], "gap_from": r["last_ts"], "gap_to": None}
        for r in await fetch_all(conn, q.OPEN_GAPS, **window, gap=GAP)
    ]
    sensors = await fetch_all(conn, q.SENSORS, gateway=None, tank=tank_id)
    return render(
        request,
        "engineer/eng_tank.html",
        {
            "tank": tank,
            "here": f"/facilities/{facility_id}/tanks/{tank_id}/diagnostics",
            "alarms": await tank_alarms(conn, facility_id, tank_id, locale),
            "hours": hours,
            "sensors": [_sensor(s) for s in sensors],
            "hourly": _hourly(await fetch_all(conn, q.HOURLY, **window), since, hours),
            "gaps": open_gaps + gaps,
            "gap_minutes": int(GAP.total_seconds() // 60),
            "conflicts": await fetch_all(conn, q.CONFLICTS, tank=tank_id, limit=LIST_ROWS),
            "quarantine": await fetch_all(
                conn, q.QUARANTINE_OF_TANK, tank=tank_id, limit=LIST_ROWS
            ),
            "grafana": grafana_link(
                request,
                "oxy-tanks",
                province=tank["province_code"],
                facility=facility_id,
                tank=tank_id,
            ),
            "now": now,
        },
        locale=locale,
        principal=me,
    )
