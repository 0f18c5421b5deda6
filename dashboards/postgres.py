"""A query of Grafana's PostgreSQL data source (`grafana-postgresql-datasource`), typed, with its
builder, in the form grafana-foundation-sdk generates for the data sources it covers.

The SDK (11.6.0) has no query type for the SQL data sources; this is that one, following the
SDK's own pattern (e.g. `models.athena.Dataquery` and `builders.athena.Dataquery`): a
`cog.variants.Dataquery` model with `to_json`/`from_json`, a `cog.builder.Builder` with one method
per field, and a `variant_config()` for the SDK's runtime decoder. It holds what Grafana's SQL
query editor stores for a raw query in code mode (Grafana's `SQLQuery`, in
`public/app/features/plugins/sql/types.ts`).
"""

from __future__ import annotations

import enum
import typing

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

PLUGIN_TYPE = "grafana-postgresql-datasource"


class QueryFormat(enum.StrEnum):
    """How Grafana shapes the rows: as time series (time, value, metric) or as a table."""

    TIME_SERIES = "time_series"
    TABLE = "table"


class EditorMode(enum.StrEnum):
    """Which editor the panel opens: raw SQL (code) or the visual builder."""

    CODE = "code"
    BUILDER = "builder"


class Dataquery(cogvariants.Dataquery):
    """A PostgreSQL query target: raw SQL with Grafana's macros and template variables."""

    # The query's id within the panel (A, B, …); alert rules and expressions refer to it.
    ref_id: str
    # If true, Grafana drops the response before the panel sees it.
    hide: bool | None
    query_type: str | None
    datasource: dashboard.DataSourceRef | None
    editor_mode: EditorMode | None
    format_val: QueryFormat
    raw_query: bool | None
    raw_sql: str

    def __init__(
        self,
        *,
        ref_id: str = "",
        hide: bool | None = None,
        query_type: str | None = None,
        datasource: dashboard.DataSourceRef | None = None,
        editor_mode: EditorMode | None = None,
        format_val: QueryFormat | None = None,
        raw_query: bool | None = None,
        raw_sql: str = "",
    ) -> None:
        self.ref_id = ref_id
        self.hide = hide
        self.query_type = query_type
        self.datasource = datasource
        self.editor_mode = editor_mode
        self.format_val = format_val if format_val is not None else QueryFormat.TIME_SERIES
        self.raw_query = raw_query
        self.raw_sql = raw_sql

    def to_json(self) -> dict[str, object]:
        """The target object as Grafana stores it in a dashboard or an alert rule."""
        payload: dict[str, object] = {"refId": self.ref_id}
        if self.hide is not None:
            payload["hide"] = self.hide
        if self.query_type is not None:
            payload["queryType"] = self.query_type
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        if self.editor_mode is not None:
            payload["editorMode"] = self.editor_mode
        payload["format"] = self.format_val
        if self.raw_query is not None:
            payload["rawQuery"] = self.raw_query
        payload["rawSql"] = self.raw_sql
        return payload

    @classmethod
    def from_json(cls, data: dict[str, typing.Any]) -> typing.Self:
        """The query from Grafana's JSON (what the SDK's decoder calls for this plugin)."""
        args: dict[str, typing.Any] = {}
        if "refId" in data:
            args["ref_id"] = data["refId"]
        if "hide" in data:
            args["hide"] = data["hide"]
        if "queryType" in data:
            args["query_type"] = data["queryType"]
        if "datasource" in data:
            args["datasource"] = dashboard.DataSourceRef.from_json(data["datasource"])
        if "editorMode" in data:
            args["editor_mode"] = EditorMode(data["editorMode"])
        if "format" in data:
            args["format_val"] = QueryFormat(data["format"])
        if "rawQuery" in data:
            args["raw_query"] = data["rawQuery"]
        if "rawSql" in data:
            args["raw_sql"] = data["rawSql"]
        return cls(**args)


def variant_config() -> cogruntime.DataqueryConfig:
    """The decoder entry for this plugin type (`cogruntime.register_dataquery_variant`)."""
    return cogruntime.DataqueryConfig(identifier=PLUGIN_TYPE, from_json_hook=Dataquery.from_json)


class DataqueryBuilder(cogbuilder.Builder[Dataquery]):
    """Builds a PostgreSQL query target, one method per field (the SDK's builder pattern)."""

    _internal: Dataquery

    def __init__(self) -> None:
        self._internal = Dataquery()

    def build(self) -> Dataquery:
        """Builds the object."""
        return self._internal

    def ref_id(self, ref_id: str) -> typing.Self:
        """The query's id within the panel."""
        self._internal.ref_id = ref_id
        return self

    def hide(self, hide: bool) -> typing.Self:
        """Drop the response before the panel sees it."""
        self._internal.hide = hide
        return self

    def query_type(self, query_type: str) -> typing.Self:
        """The query flavour (unused by the SQL data sources)."""
        self._internal.query_type = query_type
        return self

    def datasource(self, datasource: dashboard.DataSourceRef) -> typing.Self:
        """The data source the query runs against."""
        self._internal.datasource = datasource
        return self

    def editor_mode(self, editor_mode: EditorMode) -> typing.Self:
        """Which editor the panel opens."""
        self._internal.editor_mode = editor_mode
        return self

    def format(self, format_val: QueryFormat) -> typing.Self:
        """Time series or table."""
        self._internal.format_val = format_val
        return self

    def raw_query(self, raw_query: bool) -> typing.Self:
        """Whether `raw_sql` is the query (always, in code mode)."""
        self._internal.raw_query = raw_query
        return self

    def raw_sql(self, raw_sql: str) -> typing.Self:
        """The SQL, with Grafana's macros and template variables."""
        self._internal.raw_sql = raw_sql
        return self
