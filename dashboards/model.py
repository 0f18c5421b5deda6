"""The platform's dashboards as declarations, rendered to Grafana's JSON by Grafana's own
builders (grafana-foundation-sdk, the build for the Grafana version docker-compose.yml runs).

The declarations (a dashboard, its panels, their SQL or PromQL targets, query variables) are what
`dashboards.check` runs against a database and what the tests read; the SDK owns the JSON shape
(schema version, field config, panel options, query targets — the PostgreSQL one, which the SDK
does not generate, from `dashboards.postgres` in the SDK's own form). Layout: left to right, top
to bottom on the 24-column grid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from grafana_foundation_sdk.builders import (
    barchart,
    bargauge,
    gauge,
    prometheus,
    stat,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import prometheus as prometheus_models

from dashboards import postgres

JSON = dict[str, Any]
GRID_WIDTH = 24


@dataclass(frozen=True, slots=True)
class DatasourceRef:
    """A data source as dashboards refer to it: by uid and plugin type."""

    uid: str
    type: str

    def to_json(self) -> JSON:
        """The `datasource` object of a panel, target or variable."""
        return {"type": self.type, "uid": self.uid}

    def sdk(self) -> models.DataSourceRef:
        """The same reference as the SDK's model."""
        return models.DataSourceRef(type_val=self.type, uid=self.uid)


POSTGRES = DatasourceRef("oxy-postgres", "grafana-postgresql-datasource")
PROMETHEUS = DatasourceRef("oxy-prometheus", "prometheus")


@dataclass(frozen=True, slots=True)
class SqlTarget:
    """A raw SQL query (Grafana macros and variables allowed) against the PostgreSQL source."""

    sql: str
    format: Literal["time_series", "table"] = "time_series"
    datasource: DatasourceRef = POSTGRES

    def builder(self, ref_id: str) -> postgres.DataqueryBuilder:
        """The target of Grafana's SQL query editor in code mode (dashboards.postgres)."""
        return (
            postgres.DataqueryBuilder()
            .ref_id(ref_id)
            .datasource(self.datasource.sdk())
            .editor_mode(postgres.EditorMode.CODE)
            .format(postgres.QueryFormat(self.format))
            .raw_query(True)
            .raw_sql(self.sql.strip())
        )


@dataclass(frozen=True, slots=True)
class PromTarget:
    """A PromQL expression against the Prometheus source."""

    expr: str
    legend: str = ""
    instant: bool = False
    datasource: DatasourceRef = PROMETHEUS

    def builder(self, ref_id: str) -> prometheus.Dataquery:
        """The target of Grafana's Prometheus query editor in code mode, from the SDK."""
        query = (
            prometheus.Dataquery()
            .ref_id(ref_id)
            .datasource(self.datasource.sdk())
            .editor_mode(prometheus_models.QueryEditorMode.CODE)
            .expr(self.expr.strip())
            .legend_format(self.legend or "__auto")
        )
        return query.instant() if self.instant else query.range()


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
    # Only what the dashboards set: the reduce options and orientation of stat and bar gauges.
    options: JSON = field(default_factory=dict)

    @property
    def datasource(self) -> DatasourceRef:
        """The panel's data source (all targets of a panel share one)."""
        sources = {t.datasource for t in self.targets}
        if len(sources) != 1:
            raise ValueError(f"panel {self.title!r} mixes data sources")
        return next(iter(sources))

    def builder(self, panel_id: int, x: int, y: int) -> cogbuilder.Builder[models.Panel]:
        """The SDK's builder of this panel at its grid position."""
        b: Any = _PANEL_BUILDERS[self.type]()
        b.id(panel_id).title(self.title).description(self.description)
        b.grid_pos(models.GridPos(h=self.height, w=self.width, x=x, y=y))
        b.datasource(self.datasource.sdk())
        for i, target in enumerate(self.targets):
            b.with_target(target.builder(chr(ord("A") + i)))
        if self.unit:
            b.unit(self.unit)
        if self.decimals is not None:
            b.decimals(self.decimals)
        if self.thresholds:
            steps = [models.Threshold(value=t.value, color=t.color) for t in self.thresholds]
            b.thresholds(
                builders.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(steps)
            )
            b.color_scheme(builders.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
        if self.min_interval:
            b.interval(self.min_interval)
        unknown = set(self.options) - {"reduceOptions", "orientation"}
        if unknown:
            raise ValueError(f"panel {self.title!r}: options {sorted(unknown)} not supported")
        if "reduceOptions" in self.options:
            reduce = self.options["reduceOptions"]
            b.reduce_options(
                common_builders.ReduceDataOptions()
                .values(reduce["values"])
                .calcs(list(reduce["calcs"]))
                .fields(reduce["fields"])
            )
        if "orientation" in self.options:
            b.orientation(common_models.VizOrientation(self.options["orientation"]))
        return b  # type: ignore[no-any-return]


_PANEL_BUILDERS: dict[str, type[Any]] = {
    "timeseries": timeseries.Panel,
    "stat": stat.Panel,
    "table": table.Panel,
    "bargauge": bargauge.Panel,
    "gauge": gauge.Panel,
    "barchart": barchart.Panel,
}


@dataclass(frozen=True, slots=True)
class QueryVariable:
    """A template variable filled by a query; multi-value with "All" so SQL uses `IN ($name)`."""

    name: str
    label: str
    query: str
    datasource: DatasourceRef = POSTGRES
    multi: bool = True
    include_all: bool = True

    def builder(self) -> builders.QueryVariable:
        """The templating entry; refreshed on dashboard load so new tanks appear by themselves."""
        b = (
            builders.QueryVariable(self.name)
            .label(self.label)
            .datasource(self.datasource.sdk())
            .query(self.query.strip())
            .multi(self.multi)
            .include_all(self.include_all)
            .refresh(models.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(models.VariableSort.ALPHABETICAL_ASC)
            .hide(models.VariableHide.DONT_HIDE)
            .options([])
        )
        if self.include_all:
            b.current(models.VariableOption(selected=True, text=["All"], value=["$__all"]))
        return b


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
        b = (
            builders.Dashboard(self.title)
            .uid(self.uid)
            .description(self.description)
            .tags(list(self.tags))
            .timezone("browser")
            .editable()
            .tooltip(models.DashboardCursorSync.CROSSHAIR)
            .time(self.time_from, "now")
            .refresh(self.refresh)
        )
        for variable in self.variables:
            b.with_variable(variable.builder())
        x = y = row_height = 0
        for i, panel in enumerate(self.panels, start=1):
            if panel.width > GRID_WIDTH:
                raise ValueError(f"panel {panel.title!r} is wider than the grid")
            if x + panel.width > GRID_WIDTH:
                x, y, row_height = 0, y + row_height, 0
            b.with_panel(panel.builder(i, x, y))
            x += panel.width
            row_height = max(row_height, panel.height)
        out: JSON = json.loads(json.dumps(b.build(), cls=JSONEncoder))
        variables = out.setdefault("templating", {}).setdefault("list", [])
        for v in variables:
            v["definition"] = v["query"]  # what the query editor shows; the SDK omits it
        out.setdefault("annotations", {"list": []})
        out.setdefault("links", [])
        return out


@dataclass(frozen=True, slots=True)
class Folder:
    """A dashboard folder with a stable uid."""

    uid: str
    title: str
