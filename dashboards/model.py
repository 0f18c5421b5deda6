"""A small typed model of Grafana dashboards, rendered to the JSON Grafana stores.

Only what the platform's dashboards use: SQL and PromQL targets, query variables, a handful of
panel types, automatic layout on Grafana's 24-column grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

JSON = dict[str, Any]
GRID_WIDTH = 24
SCHEMA_VERSION = 39


@dataclass(frozen=True, slots=True)
class DatasourceRef:
    """A data source as dashboards refer to it: by uid and plugin type."""

    uid: str
    type: str

    def to_json(self) -> JSON:
        """The `datasource` object of a panel, target or variable."""
        return {"type": self.type, "uid": self.uid}


POSTGRES = DatasourceRef("oxy-postgres", "grafana-postgresql-datasource")
PROMETHEUS = DatasourceRef("oxy-prometheus", "prometheus")


@dataclass(frozen=True, slots=True)
class SqlTarget:
    """A raw SQL query (Grafana macros and variables allowed) against the PostgreSQL source."""

    sql: str
    format: Literal["time_series", "table"] = "time_series"
    datasource: DatasourceRef = POSTGRES

    def to_json(self, ref_id: str) -> JSON:
        """The target object Grafana's SQL query editor stores in code mode."""
        return {
            "refId": ref_id,
            "datasource": self.datasource.to_json(),
            "editorMode": "code",
            "format": self.format,
            "rawQuery": True,
            "rawSql": self.sql.strip(),
        }


@dataclass(frozen=True, slots=True)
class PromTarget:
    """A PromQL expression against the Prometheus source."""

    expr: str
    legend: str = ""
    instant: bool = False
    datasource: DatasourceRef = PROMETHEUS

    def to_json(self, ref_id: str) -> JSON:
        """The target object of Grafana's Prometheus query editor in code mode."""
        return {
            "refId": ref_id,
            "datasource": self.datasource.to_json(),
            "editorMode": "code",
            "expr": self.expr.strip(),
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "instant": self.instant,
        }


Target = SqlTarget | PromTarget
PanelType = Literal["timeseries", "stat", "table", "bargauge", "gauge", "barchart"]


@dataclass(frozen=True, slots=True)
class Threshold:
    """A colour step: from `value` upwards (None = the base step)."""

    color: str
    value: float | None = None


@dataclass(frozen=True, slots=True)
class Panel:
    """One panel; `width`/`height` in grid units, placed left to right, top to bottom."""

    title: str
    type: PanelType
    targets: tuple[Target, ...]
    unit: str = ""
    description: str = ""
    width: int = 12
    height: int = 8
    decimals: int | None = None
    thresholds: tuple[Threshold, ...] = ()
    min_interval: str | None = None
    options: JSON = field(default_factory=dict)
    overrides: tuple[JSON, ...] = ()

    @property
    def datasource(self) -> DatasourceRef:
        """The panel's data source (all targets of a panel share one)."""
        sources = {t.datasource for t in self.targets}
        if len(sources) != 1:
            raise ValueError(f"panel {self.title!r} mixes data sources")
        return next(iter(sources))

    def to_json(self, panel_id: int, x: int, y: int) -> JSON:
        """The panel object with its grid position."""
        defaults: JSON = {"unit": self.unit} if self.unit else {}
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        if self.thresholds:
            defaults["thresholds"] = {
                "mode": "absolute",
                "steps": [{"color": t.color, "value": t.value} for t in self.thresholds],
            }
            defaults["color"] = {"mode": "thresholds"}
        out: JSON = {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "datasource": self.datasource.to_json(),
            "targets": [t.to_json(chr(ord("A") + i)) for i, t in enumerate(self.targets)],
            "fieldConfig": {"defaults": defaults, "overrides": list(self.overrides)},
            "options": dict(self.options),
        }
        if self.min_interval:
            out["interval"] = self.min_interval
        return out


@dataclass(frozen=True, slots=True)
class QueryVariable:
    """A template variable filled by a query; multi-value with "All" so SQL uses `IN ($name)`."""

    name: str
    label: str
    query: str
    datasource: DatasourceRef = POSTGRES
    multi: bool = True
    include_all: bool = True

    def to_json(self) -> JSON:
        """The templating entry; refreshed on dashboard load so new tanks appear by themselves."""
        return {
            "name": self.name,
            "label": self.label,
            "type": "query",
            "datasource": self.datasource.to_json(),
            "query": self.query.strip(),
            "definition": self.query.strip(),
            "multi": self.multi,
            "includeAll": self.include_all,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}
            if self.include_all
            else {},
            "options": [],
            "refresh": 1,
            "sort": 1,
            "hide": 0,
        }


@dataclass(frozen=True, slots=True)
class Dashboard:
    """A dashboard: stable uid, folder, variables and panels."""

    uid: str
    title: str
    folder_uid: str
    panels: tuple[Panel, ...]
    variables: tuple[QueryVariable, ...] = ()
    description: str = ""
    tags: tuple[str, ...] = ("oxy",)
    time_from: str = "now-7d"
    refresh: str = "1m"

    def to_json(self) -> JSON:
        """The dashboard model Grafana stores (without `id`/`version`, which Grafana owns)."""
        panels: list[JSON] = []
        x = y = row_height = 0
        for i, panel in enumerate(self.panels, start=1):
            if panel.width > GRID_WIDTH:
                raise ValueError(f"panel {panel.title!r} is wider than the grid")
            if x + panel.width > GRID_WIDTH:
                x, y, row_height = 0, y + row_height, 0
            panels.append(panel.to_json(i, x, y))
            x += panel.width
            row_height = max(row_height, panel.height)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": SCHEMA_VERSION,
            "time": {"from": self.time_from, "to": "now"},
            "refresh": self.refresh,
            "templating": {"list": [v.to_json() for v in self.variables]},
            "annotations": {"list": []},
            "links": [],
            "panels": panels,
        }


@dataclass(frozen=True, slots=True)
class Folder:
    """A dashboard folder with a stable uid."""

    uid: str
    title: str
