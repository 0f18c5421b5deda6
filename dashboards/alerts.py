"""The engineers' technical alert rules, as code (Grafana unified alerting).

Each rule: a SQL query (A, table format: numeric data, one alert instance per row, its string
columns as labels) against the read-only PostgreSQL source, compared with a threshold (B). No
reduce step: Grafana reduces time series, and these queries already return one number per row.
A query error counts as firing where that is the signal (the database being down). Operational
alerts for facilities (tank running dry) belong to the platform's own alerting; these are for
the people who run the platform.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as alerting_models
from grafana_foundation_sdk.models import dashboard as models

from dashboards.gateways import SILENT_AFTER_S
from dashboards.model import JSON, POSTGRES, SqlTarget

RULE_GROUP = "oxy-technical"
ALERT_FOLDER_UID = "oxy-engineering"
EVAL_INTERVAL_S = 60
EXPR_UID = "__expr__"


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One rule: SQL returning numbers (string columns become labels), and a threshold on it."""

    uid: str
    title: str
    sql: str
    op: Literal["gt", "lt"]
    threshold: float
    summary: str
    pending: str = "5m"
    window_s: int = 600
    no_data: Literal["OK", "NoData", "Alerting"] = "OK"
    exec_err: Literal["OK", "Error", "Alerting"] = "Error"
    severity: str = "warning"
    dashboard_uid: str | None = None

    def builder(self, folder_uid: str = ALERT_FOLDER_UID) -> alerting.Rule:
        """The rule from Grafana's builders: the SQL query (A) and its threshold (B)."""
        query = (
            alerting.Query("A")
            .query_type("")
            .relative_time_range(alerting_models.RelativeTimeRange(from_val=self.window_s, to=0))
            .datasource_uid(POSTGRES.uid)
            .model(SqlTarget(self.sql, "table").builder("A"))
        )
        evaluator = expr.ExprTypeThresholdConditionsEvaluator().type(self.op)
        threshold = (
            alerting.Query("B")
            .query_type("")
            .relative_time_range(alerting_models.RelativeTimeRange(from_val=0, to=0))
            .datasource_uid(EXPR_UID)
            .model(
                expr.TypeThreshold()
                .ref_id("B")
                .expression("A")
                .conditions(
                    [
                        expr.ExprTypeThresholdConditions().evaluator(
                            evaluator.params([self.threshold])
                        )
                    ]
                )
                .datasource(models.DataSourceRef(type_val=EXPR_UID, uid=EXPR_UID))
            )
        )
        annotations = {"summary": self.summary}
        if self.dashboard_uid:
            annotations["__dashboardUid__"] = self.dashboard_uid
        return (
            alerting.Rule(self.title)
            .uid(self.uid)
            .org_id(1)
            .folder_uid(folder_uid)
            .rule_group(RULE_GROUP)
            .condition("B")
            .queries([query, threshold])
            .no_data_state(self.no_data)
            .exec_err_state(self.exec_err)
            .for_val(self.pending)
            .annotations(annotations)
            .labels({"team": "oxy-engineering", "severity": self.severity})
            .is_paused(False)
        )

    def to_api(self, folder_uid: str = ALERT_FOLDER_UID) -> JSON:
        """The body of `POST/PUT /api/v1/provisioning/alert-rules`."""
        out: JSON = json.loads(json.dumps(self.builder(folder_uid).build(), cls=JSONEncoder))
        return out

    def to_file(self) -> JSON:
        """The rule as Grafana's file provisioning (provisioning/alerting/*.yaml) writes it."""
        api = self.to_api()
        return {
            "uid": api["uid"],
            "title": api["title"],
            "condition": api["condition"],
            "data": api["data"],
            "noDataState": api["noDataState"],
            "execErrState": api["execErrState"],
            "for": api["for"],
            "annotations": api["annotations"],
            "labels": api["labels"],
            "isPaused": False,
        }


RULES: tuple[AlertRule, ...] = (
    AlertRule(
        uid="oxy-pipeline-stalled",
        title="Luồng dữ liệu dừng / Ingest pipeline stalled",
        # Only meaningful while some gateway is online: then readings must keep arriving.
        sql="""
SELECT CASE WHEN (SELECT count(*) FROM grafana.gateway_health
                  WHERE online AND revoked_at IS NULL) > 0
            THEN coalesce(extract(epoch FROM now() - (SELECT max(received_at)
                                                      FROM grafana.sensor_latest)), 1e9)
            ELSE 0 END AS seconds_since_last_reading
""",
        op="gt",
        threshold=600.0,
        summary=(
            "Không có số đọc mới trong 10 phút dù có gateway trực tuyến / No reading stored for "
            "10 minutes while gateways are online: check the ingest service and the broker."
        ),
        severity="critical",
        dashboard_uid="oxy-pipeline",
    ),
    AlertRule(
        uid="oxy-dead-letters-rising",
        title="Thư lỗi tăng / Dead letters rising",
        sql="""
SELECT count(*) AS dead_letters
FROM grafana.dead_letters
WHERE $__timeFilter(received_at)
""",
        op="gt",
        threshold=10.0,
        window_s=900,
        pending="0s",
        summary=(
            "Hơn 10 thư lỗi trong 15 phút / More than 10 dead letters in 15 minutes: a gateway or "
            "bridge is sending messages that break the wire contract."
        ),
        dashboard_uid="oxy-pipeline",
    ),
    AlertRule(
        uid="oxy-gateway-offline",
        title="Gateway mất kết nối / Gateway offline",
        # One alert instance per gateway: the string columns become its labels.
        sql=f"""
SELECT gateway, site,
       CASE WHEN online IS NOT TRUE OR silent_s IS NULL OR silent_s > {SILENT_AFTER_S}
            THEN 1 ELSE 0 END AS offline
FROM grafana.gateway_health
WHERE revoked_at IS NULL
""",
        op="gt",
        threshold=0.0,
        pending="5m",
        summary=(
            "Gateway {{ $labels.gateway }} ({{ $labels.site }}) mất kết nối / is offline or "
            "silent: readings are buffered in its outbox until it returns."
        ),
        dashboard_uid="oxy-gateways",
    ),
    AlertRule(
        uid="oxy-rollups-behind",
        title="Tổng hợp bị chậm / Rollups behind",
        # Plain PostgreSQL: the ranges the ingest writer queues wait at most for their minute to
        # close and the next flush (seconds); on TimescaleDB nothing is ever queued.
        sql="""
SELECT coalesce(extract(epoch FROM now() - oldest_queued_at), 0) AS oldest_queued_s
FROM grafana.rollup_queue
""",
        op="gt",
        threshold=600.0,
        summary=(
            "Số liệu tổng hợp phút/giờ/ngày chậm hơn 10 phút / The minute, hour and day rollups "
            "are more than 10 minutes behind the raw readings: check that an ingest worker runs "
            "and its log for 'rollup maintenance failed'."
        ),
        dashboard_uid="oxy-pipeline",
    ),
    AlertRule(
        uid="oxy-database-down",
        title="CSDL không truy cập được / Database down",
        sql="SELECT 1 AS up",
        op="lt",
        threshold=1.0,
        pending="1m",
        no_data="Alerting",
        exec_err="Alerting",
        summary=(
            "Grafana không truy vấn được PostgreSQL / Grafana cannot query PostgreSQL: ingest "
            "stops acknowledging and the broker holds messages until it returns."
        ),
        severity="critical",
    ),
)
