"""Engineers act from their pages: replay a gateway's quarantined readings once the registry
knows their sensor (audited, only their own gateways), and acknowledge the alarms of a gateway or
a tank, and resolve them with a note (the alerts service's own forms, audited, back to the page).
Forms carry CSRF; everything else 404s."""

from __future__ import annotations

from datetime import timedelta

import psycopg
from fastapi.testclient import TestClient

from tests.api.conftest import World, csrf_of, login
from tests.engineer.test_engineer_pages import NOW, Site

TS = NOW - timedelta(hours=1)


def _quarantine(world: World) -> None:
    """A reading of a sensor the registry did not know, on each gateway."""
    with psycopg.connect(world.db_url) as conn:
        conn.execute(
            "INSERT INTO quarantine (topic, site, gateway, sensor, ts, value, unit, quality, "
            "reason) VALUES ('t', 'BV-IN', 'gw-bv-in', 'T1-new', %s, 3.3, 'bar', 0, "
            "'unknown sensor'), ('t', 'BV-OUT', 'gw-bv-out', 'T9-new', %s, 4.4, 'bar', 0, "
            "'unknown sensor')",
            (TS, TS),
        )


def _register(world: World, site: Site) -> int:
    """The registry fix: both new sensors become known."""
    with psycopg.connect(world.db_url) as conn:
        row = conn.execute(
            "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
            "VALUES (%s, 'T1-new', %s, 'head_pressure', 'bar') RETURNING id",
            (world.gw_in, site.tank_in),
        ).fetchone()
        conn.execute(
            "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
            "VALUES (%s, 'T9-new', %s, 'head_pressure', 'bar')",
            (world.gw_out, site.tank_out),
        )
    assert row is not None
    return int(row[0])


def test_engineer_replays_their_gateways_quarantine(
    fixed: TestClient,
    world: World,
    site: Site,
) -> None:
    _quarantine(world)
    sensor = _register(world, site)
    login(fixed, "eng-in")
    path = f"/facilities/{world.fac_in}/gateways/{world.gw_in}"
    page = fixed.get(path)
    assert f'action="{path}/quarantine/replay"' in page.text
    assert fixed.post(f"{path}/quarantine/replay", follow_redirects=False).status_code == 403
    r = fixed.post(
        f"{path}/quarantine/replay",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == path
    shown = fixed.get(path).text
    assert "Đã đưa 1 số đo ra khỏi khu cách ly" in shown, shown
    with psycopg.connect(world.db_url) as conn:
        stored = conn.execute(
            "SELECT value FROM readings WHERE sensor_id = %s AND ts = %s", (sensor, TS)
        ).fetchone()
        left = [r[0] for r in conn.execute("SELECT sensor FROM quarantine ORDER BY sensor")]
        trail = conn.execute(
            "SELECT username, after FROM audit_log WHERE action = 'replay_quarantine' "
            "AND entity = 'gateway' AND entity_id = %s",
            (str(world.gw_in),),
        ).fetchall()
    assert stored is not None and abs(float(stored[0]) - 3.3) < 1e-9  # type: ignore[arg-type]
    # The other facility's reading stays where it is; so does the still-unknown T1-lvl.
    assert left == ["T1-lvl", "T9-lvl", "T9-new"]
    assert len(trail) == 1 and trail[0][0] == "eng-in"
    assert trail[0][1]["released"] == 1 and trail[0][1]["still_unknown"] == 1


def test_replay_of_another_facilitys_gateway_is_hidden(
    fixed: TestClient,
    world: World,
    site: Site,
) -> None:
    _quarantine(world)
    _register(world, site)
    login(fixed, "eng-in")
    token = csrf_of(fixed.get("/gateways").text)
    for fac, gw in ((world.fac_out, world.gw_out), (world.fac_in, world.gw_out)):
        r = fixed.post(
            f"/facilities/{fac}/gateways/{gw}/quarantine/replay",
            data={"csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 404
    with psycopg.connect(world.db_url) as conn:
        n = conn.execute("SELECT count(*) FROM quarantine WHERE gateway = 'gw-bv-out'").fetchone()
    assert n is not None and n[0] == 2


def test_engineer_replays_one_tanks_quarantine(
    fixed: TestClient,
    world: World,
    site: Site,
) -> None:
    """From the tank's diagnostics page: only the readings of that tank's sensors leave the
    quarantine (another tank on the same gateway keeps its own), audited against the tank."""
    _quarantine(world)
    sensor = _register(world, site)
    with psycopg.connect(world.db_url) as conn:
        conn.execute(
            "INSERT INTO quarantine (topic, site, gateway, sensor, ts, value, unit, quality, "
            "reason) VALUES ('t', 'BV-IN', 'gw-bv-in', 'T2-new', %s, 5.5, 'bar', 0, "
            "'unknown sensor')",
            (TS,),
        )
        tank2 = conn.execute(
            "INSERT INTO tanks (facility_id, code, name, capacity_kg) "
            "VALUES (%s, 'T2', 'Bồn phụ', 5000) RETURNING id",
            (world.fac_in,),
        ).fetchone()
        assert tank2 is not None
        conn.execute(
            "INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit) "
            "VALUES (%s, 'T2-new', %s, 'head_pressure', 'bar')",
            (world.gw_in, tank2[0]),
        )
    login(fixed, "eng-in")
    path = f"/facilities/{world.fac_in}/tanks/{site.tank_in}/diagnostics"
    page = fixed.get(path)
    action = f"/facilities/{world.fac_in}/tanks/{site.tank_in}/quarantine/replay"
    assert f'action="{action}"' in page.text
    assert fixed.post(action, follow_redirects=False).status_code == 403  # no CSRF token
    r = fixed.post(action, data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == path
    shown = fixed.get(path).text
    assert "Đã đưa 1 số đo ra khỏi khu cách ly" in shown, shown
    with psycopg.connect(world.db_url) as conn:
        stored = conn.execute(
            "SELECT value FROM readings WHERE sensor_id = %s AND ts = %s", (sensor, TS)
        ).fetchone()
        left = [r[0] for r in conn.execute("SELECT sensor FROM quarantine ORDER BY sensor")]
        trail = conn.execute(
            "SELECT username, before, after, org_id FROM audit_log "
            "WHERE action = 'replay_quarantine' AND entity = 'tank' AND entity_id = %s",
            (str(site.tank_in),),
        ).fetchall()
    assert stored is not None and abs(float(stored[0]) - 3.3) < 1e-9  # type: ignore[arg-type]
    # The other tank's reading (same gateway, now known) and the other facility's stay.
    assert left == ["T1-lvl", "T2-new", "T9-lvl", "T9-new"]
    assert len(trail) == 1 and trail[0][0] == "eng-in" and trail[0][3] == world.fac_in
    assert trail[0][2]["released"] == 1 and trail[0][2]["kept"] == 0


def test_replay_of_another_facilitys_tank_is_hidden(
    fixed: TestClient,
    world: World,
    site: Site,
) -> None:
    _quarantine(world)
    _register(world, site)
    login(fixed, "eng-in")
    token = csrf_of(fixed.get("/gateways").text)
    for fac, tank in ((world.fac_out, site.tank_out), (world.fac_in, site.tank_out)):
        r = fixed.post(
            f"/facilities/{fac}/tanks/{tank}/quarantine/replay",
            data={"csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 404
    with psycopg.connect(world.db_url) as conn:
        n = conn.execute("SELECT count(*) FROM quarantine WHERE gateway = 'gw-bv-out'").fetchone()
    assert n is not None and n[0] == 2


def _alert(world: World, kind: str, subject: int, facility: int, rule: str) -> int:
    with psycopg.connect(world.db_url) as conn:
        row = conn.execute(
            "INSERT INTO alerts (rule, subject_kind, subject_id, facility_id, severity, "
            "opened_at, last_true_at) VALUES (%s, %s, %s, %s, 'critical', %s, %s) RETURNING id",
            (rule, kind, subject, facility, TS, TS),
        ).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def test_engineer_acknowledges_alarms_from_gateway_and_tank_pages(
    fixed: TestClient,
    world: World,
    site: Site,
) -> None:
    offline = _alert(world, "gateway", world.gw_in, world.fac_in, "gateway_offline")
    other = _alert(world, "gateway", world.gw_out, world.fac_out, "gateway_offline")
    stale = _alert(world, "sensor", site.head, world.fac_in, "sensor_stale")
    login(fixed, "eng-in")
    gw_path = f"/facilities/{world.fac_in}/gateways/{world.gw_in}"
    page = fixed.get(gw_path)
    alarms = page.text.split('data-testid="alarms"', 1)[1].split("</table>", 1)[0]
    assert "Gateway mất kết nối" in alarms, alarms
    assert f'action="/alerts/{offline}/ack"' in alarms and f'value="{gw_path}"' in alarms
    assert f"/alerts/{other}/ack" not in page.text
    r = fixed.post(
        f"/alerts/{offline}/ack",
        data={"csrf_token": csrf_of(page.text), "next": gw_path},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == gw_path
    # A foreign "next" is never followed.
    tank_path = f"/facilities/{world.fac_in}/tanks/{site.tank_in}/diagnostics"
    tank = fixed.get(tank_path)
    assert f'action="/alerts/{stale}/ack"' in tank.text
    r = fixed.post(
        f"/alerts/{stale}/ack",
        data={"csrf_token": csrf_of(tank.text), "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    # Another facility's alarm: hidden.
    r = fixed.post(
        f"/alerts/{other}/ack",
        data={"csrf_token": csrf_of(tank.text), "next": gw_path},
        follow_redirects=False,
    )
    assert r.status_code == 404
    with psycopg.connect(world.db_url) as conn:
        states = dict(conn.execute("SELECT id, state FROM alerts").fetchall())
        trail = conn.execute(
            "SELECT entity_id FROM audit_log WHERE action = 'acknowledge' AND entity = 'alert' "
            "ORDER BY id"
        ).fetchall()
    assert states == {offline: "acknowledged", other: "open", stale: "acknowledged"}
    assert [t[0] for t in trail] == [str(offline), str(stale)]


def test_engineer_resolves_alarms_from_gateway_and_tank_pages(
    fixed: TestClient,
    world: World,
    site: Site,
) -> None:
    offline = _alert(world, "gateway", world.gw_in, world.fac_in, "gateway_offline")
    other = _alert(world, "gateway", world.gw_out, world.fac_out, "gateway_offline")
    stale = _alert(world, "sensor", site.head, world.fac_in, "sensor_stale")
    login(fixed, "eng-in")
    gw_path = f"/facilities/{world.fac_in}/gateways/{world.gw_in}"
    page = fixed.get(gw_path)
    alarms = page.text.split('data-testid="alarms"', 1)[1].split("</table>", 1)[0]
    assert f'action="/alerts/{offline}/resolve"' in alarms, alarms
    assert 'name="note"' in alarms and "Đóng cảnh báo" in alarms
    assert f"/alerts/{other}/resolve" not in page.text
    token = csrf_of(page.text)
    # No CSRF token: refused. No note: the same rule as the alerts page, back to the page.
    r = fixed.post(
        f"/alerts/{offline}/resolve", data={"note": "x", "next": gw_path}, follow_redirects=False
    )
    assert r.status_code == 403
    r = fixed.post(
        f"/alerts/{offline}/resolve",
        data={"csrf_token": token, "note": "  ", "next": gw_path},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == gw_path
    assert "Cần ghi chú việc đã làm." in fixed.get(gw_path).text
    r = fixed.post(
        f"/alerts/{offline}/resolve",
        data={"csrf_token": token, "note": "Thay cáp mạng", "next": gw_path},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == gw_path
    after = fixed.get(gw_path).text
    assert f'data-alert="{offline}"' not in after  # resolved: off the page's open alarms
    # Resolving twice: the service refuses, said on the page it came from.
    r = fixed.post(
        f"/alerts/{offline}/resolve",
        data={"csrf_token": token, "note": "again", "next": gw_path},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == gw_path
    # From the tank page, an acknowledged alarm; a foreign "next" is never followed.
    tank_path = f"/facilities/{world.fac_in}/tanks/{site.tank_in}/diagnostics"
    tank = fixed.get(tank_path)
    assert f'action="/alerts/{stale}/ack"' in tank.text
    fixed.post(
        f"/alerts/{stale}/ack",
        data={"csrf_token": csrf_of(tank.text), "next": tank_path},
        follow_redirects=False,
    )
    tank = fixed.get(tank_path)
    assert f'action="/alerts/{stale}/resolve"' in tank.text
    r = fixed.post(
        f"/alerts/{stale}/resolve",
        data={"csrf_token": csrf_of(tank.text), "note": "Đã hiệu chuẩn", "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    # Another facility's alarm: hidden.
    r = fixed.post(
        f"/alerts/{other}/resolve",
        data={"csrf_token": csrf_of(tank.text), "note": "x", "next": gw_path},
        follow_redirects=False,
    )
    assert r.status_code == 404
    with psycopg.connect(world.db_url) as conn:
        states = dict(conn.execute("SELECT id, state FROM alerts").fetchall())
        notes = dict(conn.execute("SELECT id, resolution_note FROM alerts").fetchall())
        trail = conn.execute(
            "SELECT entity_id, username, after FROM audit_log WHERE action = 'resolve' "
            "AND entity = 'alert' ORDER BY id"
        ).fetchall()
    assert states == {offline: "resolved", other: "open", stale: "resolved"}
    assert notes[offline] == "Thay cáp mạng" and notes[stale] == "Đã hiệu chuẩn"
    assert [(t[0], t[1], t[2]["note"]) for t in trail] == [
        (str(offline), "eng-in", "Thay cáp mạng"),
        (str(stale), "eng-in", "Đã hiệu chuẩn"),
    ]
