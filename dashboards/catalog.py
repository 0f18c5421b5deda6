"""Everything the platform provisions into Grafana: folders, dashboards, alert rules."""

from __future__ import annotations

from dashboards import gateways, national, pipeline, tanks
from dashboards.alerts import RULES, AlertRule
from dashboards.model import Dashboard, Folder

FOLDERS: tuple[Folder, ...] = (
    Folder("oxy-engineering", "Oxy — Kỹ thuật / Engineering"),
    Folder("oxy-national", "Oxy — Toàn quốc / National"),
)

DASHBOARDS: tuple[Dashboard, ...] = (
    tanks.DASHBOARD,
    gateways.DASHBOARD,
    pipeline.DASHBOARD,
    national.DASHBOARD,
)

ALERT_RULES: tuple[AlertRule, ...] = RULES
