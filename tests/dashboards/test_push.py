"""`oxy dashboards push` against a local server that checks Grafana's documented HTTP API:
the right requests, and a second run that changes nothing."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from dashboards.catalog import ALERT_RULES, DASHBOARDS, FOLDERS
from dashboards.push import PushError, connect, push
from dashboards.sources import SourcesConfig
from tests.dashboards.grafana_api import ADMIN, TOKEN, FakeGrafana

SOURCES = SourcesConfig(db_host="db:5432", db_name="oxy", db_password="pw-from-env")


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana().start()
    try:
        yield server
    finally:
        server.stop()


def test_first_push_creates_everything_with_documented_requests(grafana: FakeGrafana) -> None:
    report = push(connect(grafana.url, token=TOKEN), SOURCES)
    state = grafana.state
    assert state.violations == []
    assert set(state.folders) == {f.uid for f in FOLDERS}
    assert set(state.datasources) == {"oxy-postgres", "oxy-prometheus"}
    assert state.secrets["oxy-postgres"] == {"password": "pw-from-env"}
    assert state.datasources["oxy-postgres"]["user"] == "oxy_grafana"
    assert set(state.dashboards) == {d.uid for d in DASHBOARDS}
    assert {uid: state.dashboard_folder[uid] for uid in state.dashboards} == {
        d.uid: d.folder_uid for d in DASHBOARDS
    }
    assert set(state.rules) == {r.uid for r in ALERT_RULES}
    assert len(report.created) == len(FOLDERS) + 2 + len(DASHBOARDS) + len(ALERT_RULES)
    # Exactly the documented write calls, in dependency order (folders and sources first).
    writes = [(r.method, r.path.split("/uid/")[0]) for r in state.writes]
    assert writes == (
        [("POST", "/api/folders")] * len(FOLDERS)
        + [("POST", "/api/datasources")] * 2
        + [("POST", "/api/dashboards/db")] * len(DASHBOARDS)
        + [("POST", "/api/v1/provisioning/alert-rules")] * len(ALERT_RULES)
    )
    for req in state.writes:
        if req.path == "/api/dashboards/db":
            assert req.body["overwrite"] is True
            assert req.body["dashboard"]["id"] is None
            assert req.body["folderUid"] in {f.uid for f in FOLDERS}


def test_second_push_changes_nothing(grafana: FakeGrafana) -> None:
    api = connect(grafana.url, user=ADMIN[0], password=ADMIN[1])
    push(api, SOURCES)
    before = copy.deepcopy(
        (grafana.state.datasources, grafana.state.folders, grafana.state.dashboards)
    )
    rules_before = copy.deepcopy(grafana.state.rules)
    writes_before = len(grafana.state.writes)

    report = push(api, SOURCES)
    assert not report.changed, report
    assert len(grafana.state.writes) == writes_before  # only GETs the second time
    assert (grafana.state.datasources, grafana.state.folders, grafana.state.dashboards) == before
    assert grafana.state.rules == rules_before
    assert all(d["version"] == 1 for d in grafana.state.dashboards.values())
    assert grafana.state.violations == []


def test_push_repairs_drift_and_only_drift(grafana: FakeGrafana) -> None:
    api = connect(grafana.url, token=TOKEN)
    push(api, SOURCES)
    state = grafana.state
    # Someone edits a dashboard in the UI, renames a folder, changes a rule and the DB host.
    state.dashboards["oxy-tanks"]["panels"][0]["title"] = "edited by hand"
    state.folders["oxy-national"]["title"] = "renamed"
    state.rules["oxy-gateway-offline"]["for"] = "1h"
    state.datasources["oxy-postgres"]["url"] = "elsewhere:5432"
    writes_before = len(state.writes)

    report = push(api, SOURCES)
    assert sorted(report.updated) == [
        "alert-rule:oxy-gateway-offline",
        "dashboard:oxy-tanks",
        "datasource:oxy-postgres",
        "folder:oxy-national",
    ]
    assert len(state.writes) - writes_before == 4
    assert state.dashboards["oxy-tanks"]["version"] == 2
    assert state.dashboards["oxy-tanks"]["panels"][0]["title"] != "edited by hand"
    assert state.folders["oxy-national"]["title"] == "Oxy — Toàn quốc / National"
    assert state.rules["oxy-gateway-offline"]["for"] == "5m"
    assert state.datasources["oxy-postgres"]["url"] == "db:5432"
    assert not push(api, SOURCES).changed
    assert state.violations == []


def test_wrong_credentials_fail_with_a_clear_error(grafana: FakeGrafana) -> None:
    with pytest.raises(PushError, match="folder:oxy-engineering"):
        push(connect(grafana.url, token="wrong"), SOURCES)
    with pytest.raises(PushError, match="token"):
        connect(grafana.url)


def test_cli_push_is_idempotent(grafana: FakeGrafana) -> None:
    from oxy.cli import _register_packages, app

    _register_packages()
    runner = CliRunner()
    args = ["dashboards", "push", "--url", grafana.url, "--token", TOKEN, "--db-host", "pg:5432"]
    first = runner.invoke(app, args, env={"OXY_GRAFANA_DB_PASSWORD": "x"})
    assert first.exit_code == 0, first.output
    assert "created dashboard:oxy-national" in first.output
    second = runner.invoke(app, args, env={"OXY_GRAFANA_DB_PASSWORD": "x"})
    assert second.exit_code == 0, second.output
    assert "created 0, updated 0" in second.output
    assert grafana.state.datasources["oxy-postgres"]["url"] == "pg:5432"
