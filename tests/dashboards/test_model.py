"""The dashboards, data sources and alert rules have the structure Grafana needs, every reference
resolves (data source uids, folders, variables, Prometheus metric names), and the committed
file-based provisioning is what the code builds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import files
from dashboards.alerts import EXPR_UID
from dashboards.catalog import ALERT_RULES, DASHBOARDS, FOLDERS
from dashboards.macros import used_variables, variable_order
from dashboards.sources import FILE_CONFIG, all_sources

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = Path(files.__file__).resolve().parent / "provisioning"
SOURCE_UIDS = {s["uid"]: s["type"] for s in all_sources(FILE_CONFIG)}
PANEL_TYPES = {"timeseries", "stat", "table", "bargauge", "gauge", "barchart", "state-timeline"}


def _rects_overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return not (
        a["x"] + a["w"] <= b["x"]
        or b["x"] + b["w"] <= a["x"]
        or a["y"] + a["h"] <= b["y"]
        or b["y"] + b["h"] <= a["y"]
    )


def _check_ds(ref: Any, where: str) -> None:
    assert isinstance(ref, dict), where
    assert ref.get("uid") in SOURCE_UIDS, f"{where}: unknown data source {ref}"
    assert ref.get("type") == SOURCE_UIDS[ref["uid"]], where


@pytest.mark.parametrize("dash", DASHBOARDS, ids=lambda d: d.uid)
def test_dashboard_json_has_grafanas_structure(dash: Any) -> None:
    model = json.loads(json.dumps(dash.to_json()))  # plain JSON, as stored
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", model["uid"])
    assert model["title"] and isinstance(model["schemaVersion"], int)
    assert "id" not in model and "version" not in model  # Grafana owns those
    assert model["time"]["from"].startswith("now-") and model["time"]["to"] == "now"
    panels = model["panels"]
    assert panels
    assert len({p["id"] for p in panels}) == len(panels)
    for p in panels:
        where = f"{dash.uid}/{p['title']}"
        assert p["type"] in PANEL_TYPES, where
        pos = p["gridPos"]
        assert set(pos) == {"x", "y", "w", "h"} and all(isinstance(v, int) for v in pos.values())
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["w"] > 0 and pos["h"] > 0
        _check_ds(p["datasource"], where)
        assert p["targets"], where
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), where
        for t in p["targets"]:
            _check_ds(t["datasource"], where)
            assert t["datasource"] == p["datasource"], where
            if t["datasource"]["type"] == "prometheus":
                assert t["expr"].strip(), where
            else:
                assert t["rawQuery"] is True and t["rawSql"].strip(), where
                assert t["format"] in {"time_series", "table"}, where
    for a, b in ((a, b) for i, a in enumerate(panels) for b in panels[i + 1 :]):
        assert not _rects_overlap(a["gridPos"], b["gridPos"]), (a["title"], b["title"])


@pytest.mark.parametrize("dash", DASHBOARDS, ids=lambda d: d.uid)
def test_every_variable_resolves(dash: Any) -> None:
    model = dash.to_json()
    defined = {v["name"]: v for v in model["templating"]["list"]}
    for v in defined.values():
        assert v["type"] == "query" and v["query"] == v["definition"]
        _check_ds(v["datasource"], f"{dash.uid} ${v['name']}")
        assert used_variables(v["query"]) <= set(defined), v["name"]
    # Variables can be resolved in some order (no cycles), and panels use only defined ones.
    variable_order({name: v["query"] for name, v in defined.items()})
    for p in model["panels"]:
        for t in p["targets"]:
            text = t.get("rawSql") or t.get("expr") or ""
            missing = used_variables(text) - set(defined)
            assert not missing, f"{dash.uid}/{p['title']} uses undefined {missing}"


def test_uids_are_unique_and_folders_exist() -> None:
    uids = [d.uid for d in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    folder_uids = {f.uid for f in FOLDERS}
    assert {d.folder_uid for d in DASHBOARDS} <= folder_uids
    rule_uids = [r.uid for r in ALERT_RULES]
    assert len(set(rule_uids)) == len(rule_uids)
    assert {"oxy-pipeline-stalled", "oxy-dead-letters-rising", "oxy-gateway-offline"} <= set(
        rule_uids
    )
    assert "oxy-database-down" in rule_uids


@pytest.mark.parametrize("rule", ALERT_RULES, ids=lambda r: r.uid)
def test_alert_rules_reference_what_exists(rule: Any) -> None:
    body = rule.to_api()
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", body["uid"])
    assert body["folderUID"] in {f.uid for f in FOLDERS}
    ref_ids = [d["refId"] for d in body["data"]]
    assert body["condition"] in ref_ids
    for d in body["data"]:
        assert d["datasourceUid"] in SOURCE_UIDS or d["datasourceUid"] == EXPR_UID
        if d["datasourceUid"] == EXPR_UID:
            assert d["model"]["expression"] in ref_ids
        else:
            assert d["relativeTimeRange"]["from"] > 0
    assert body["noDataState"] in {"OK", "NoData", "Alerting"}
    assert body["execErrState"] in {"OK", "Error", "Alerting"}
    assert re.fullmatch(r"\d+[smh]", body["for"])
    if "__dashboardUid__" in body["annotations"]:
        assert body["annotations"]["__dashboardUid__"] in {d.uid for d in DASHBOARDS}


def test_prometheus_metric_names_exist_in_the_ingest_service() -> None:
    from ingest.metrics import Metrics

    metrics = Metrics()
    # Touch every labelled family so that its samples (and histogram buckets) are exposed.
    metrics.messages.labels("data").inc()
    metrics.db_errors.labels("unavailable").inc()
    exposed = {s.name for fam in metrics.registry.collect() for s in fam.samples}
    used = set()
    for dash in DASHBOARDS:
        for p in dash.to_json()["panels"]:
            for t in p["targets"]:
                used |= set(re.findall(r"\boxy_[a-z0-9_]+", t.get("expr", "")))
    assert used, "the pipeline dashboard queries no ingest metric"
    assert used <= exposed, f"unknown metrics: {sorted(used - exposed)}"


def test_committed_provisioning_files_are_current() -> None:
    assert files.stale_files(PROVISIONING) == [], "run `oxy dashboards build`"


def test_provisioning_files_match_the_api_payloads() -> None:
    ds = yaml.safe_load((PROVISIONING / "datasources/oxy.yaml").read_text(encoding="utf-8"))
    assert {d["uid"] for d in ds["datasources"]} == set(SOURCE_UIDS)
    text = (PROVISIONING / "datasources/oxy.yaml").read_text(encoding="utf-8")
    # No secret in the repository: the password is an environment reference Grafana expands.
    pg = next(d for d in ds["datasources"] if d["uid"] == "oxy-postgres")
    assert pg["secureJsonData"]["password"] == "${OXY_GRAFANA_DB_PASSWORD}"
    assert pg["user"] == "oxy_grafana"
    assert "password" not in text.replace("password: ${OXY_GRAFANA_DB_PASSWORD}", "")

    providers = yaml.safe_load((PROVISIONING / "dashboards/oxy.yaml").read_text(encoding="utf-8"))
    for prov in providers["providers"]:
        folder_dir = PROVISIONING / "dashboards/json" / prov["folderUid"]
        assert prov["options"]["path"].endswith("/dashboards/json/" + prov["folderUid"])
        assert any(folder_dir.glob("*.json")), prov["name"]
        for path in folder_dir.glob("*.json"):
            model = json.loads(path.read_text(encoding="utf-8"))
            assert model["uid"] == path.stem
            assert (
                next(d for d in DASHBOARDS if d.uid == model["uid"]).folder_uid == prov["folderUid"]
            )

    alerting = yaml.safe_load(
        (PROVISIONING / "alerting/oxy-technical.yaml").read_text(encoding="utf-8")
    )
    rules = [r for g in alerting["groups"] for r in g["rules"]]
    titles = {f.title for f in FOLDERS}
    assert all(g["folder"] in titles for g in alerting["groups"])

    def unescape(v: Any) -> Any:
        if isinstance(v, str):
            return v.replace("$$", "$")
        if isinstance(v, list):
            return [unescape(x) for x in v]
        if isinstance(v, dict):
            return {k: unescape(x) for k, x in v.items()}
        return v

    assert [unescape(r) for r in rules] == [r.to_file() for r in ALERT_RULES]
    # Grafana would expand a lone `$__timeFilter` as an environment variable: all are doubled.
    raw = (PROVISIONING / "alerting/oxy-technical.yaml").read_text(encoding="utf-8")
    assert re.search(r"(?<!\$)\$(?!\$)", raw) is None


def test_the_sdk_build_matches_the_grafana_that_compose_runs() -> None:
    """The dashboards are built with grafana-foundation-sdk's build for the Grafana release that
    docker-compose.yml runs (the version after the epoch), so the JSON has that release's schema."""
    from importlib.metadata import version

    from grafana_foundation_sdk.models.dashboard import Dashboard as SdkDashboard

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    image = compose["services"]["grafana"]["image"]
    assert image.startswith("grafana/grafana:")
    grafana = image.split(":", 1)[1]
    sdk = version("grafana-foundation-sdk")
    assert "!" in sdk and sdk.split("!", 1)[1] == grafana, (sdk, image)
    schema = SdkDashboard().schema_version
    for dash in DASHBOARDS:
        assert dash.to_json()["schemaVersion"] == schema
