"""The PostgreSQL query type (dashboards.postgres), written in grafana-foundation-sdk's own form:
its builder produces the targets the provisioned dashboards hold, and the SDK's decoder reads
them back through its variant config."""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as models

from dashboards import postgres
from dashboards.model import POSTGRES, SqlTarget

PROVISIONED = Path(__file__).resolve().parents[2] / "dashboards" / "provisioning" / "dashboards"


def _json(obj: object) -> object:
    return json.loads(json.dumps(obj, cls=JSONEncoder))


def test_the_builder_writes_what_grafanas_sql_editor_stores_in_code_mode() -> None:
    query = (
        postgres.DataqueryBuilder()
        .ref_id("A")
        .datasource(models.DataSourceRef(type_val=postgres.PLUGIN_TYPE, uid="pg"))
        .editor_mode(postgres.EditorMode.CODE)
        .format(postgres.QueryFormat.TABLE)
        .raw_query(True)
        .raw_sql("SELECT 1")
        .build()
    )
    assert _json(query) == {
        "refId": "A",
        "datasource": {"type": "grafana-postgresql-datasource", "uid": "pg"},
        "editorMode": "code",
        "format": "table",
        "rawQuery": True,
        "rawSql": "SELECT 1",
    }
    # Unset optional fields are left out; the format defaults to time series as in Grafana.
    assert _json(postgres.DataqueryBuilder().ref_id("B").build()) == {
        "refId": "B",
        "format": "time_series",
        "rawSql": "",
    }


def test_every_provisioned_sql_target_round_trips_through_the_sdk_decoder() -> None:
    runtime = cogruntime.Runtime()
    runtime.register_dataquery_variant(postgres.variant_config())
    seen = 0
    for path in sorted(PROVISIONED.rglob("*.json")):
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            for target in panel.get("targets", []):
                if target.get("datasource", {}).get("type") != postgres.PLUGIN_TYPE:
                    continue
                decoded = runtime.dataquery_variants[postgres.PLUGIN_TYPE].from_json_hook(target)
                assert isinstance(decoded, postgres.Dataquery)
                assert _json(decoded) == target
                seen += 1
    assert seen > 20


def test_sql_targets_are_built_with_it() -> None:
    built = SqlTarget("  SELECT now()  ", "table").builder("C").build()
    assert isinstance(built, postgres.Dataquery)
    assert built.raw_sql == "SELECT now()"
    assert built.format_val is postgres.QueryFormat.TABLE
    assert built.datasource is not None and built.datasource.uid == POSTGRES.uid
