"""Provision Grafana over its HTTP API (grafana-client), idempotently.

Every object has a stable uid. For each one the current state is read first and written only
when it differs from the code, so running `oxy dashboards push` twice changes nothing (no new
dashboard versions, no rewritten rules).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from dashboards.catalog import ALERT_RULES, DASHBOARDS, FOLDERS
from dashboards.model import JSON
from dashboards.sources import SourcesConfig, all_sources
from oxy import OxyError

logger = logging.getLogger(__name__)

PUSH_MESSAGE = "oxy dashboards push"


class PushError(OxyError):
    """Grafana refused or could not be reached; the message says which object and why."""


@dataclass(slots=True)
class PushReport:
    """What a push did, as `kind:uid` entries."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when the push wrote anything."""
        return bool(self.created or self.updated)

    def summary(self) -> str:
        """One line for the CLI."""
        return (
            f"created {len(self.created)}, updated {len(self.updated)}, "
            f"unchanged {len(self.unchanged)}"
        )


def contains(actual: Any, desired: Any) -> bool:
    """True when `actual` holds everything `desired` says (Grafana adds fields of its own)."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(desired)
            and all(contains(a, d) for a, d in zip(actual, desired, strict=True))
        )
    if isinstance(desired, float) and isinstance(actual, int | float):
        return float(actual) == desired
    return bool(actual == desired)


class Provisioner:
    """Pushes folders, data sources, dashboards and alert rules through a `GrafanaApi`."""

    def __init__(self, api: Any, sources: SourcesConfig) -> None:
        self.api = api
        self.sources = sources
        self.report = PushReport()

    def _get(self, what: str, fn: Any, *args: Any) -> Any | None:
        """Call a GET; None on 404, PushError on anything else that fails."""
        from grafana_client.client import GrafanaClientError, GrafanaException

        try:
            return fn(*args)
        except GrafanaClientError as exc:
            if exc.status_code == 404:
                return None
            raise PushError(f"reading {what} from Grafana failed: {exc}") from exc
        except GrafanaException as exc:
            raise PushError(f"reading {what} from Grafana failed: {exc}") from exc

    def _write(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from grafana_client.client import GrafanaException

        try:
            return fn(*args, **kwargs)
        except GrafanaException as exc:
            raise PushError(f"writing {what} to Grafana failed: {exc}") from exc

    def folders(self) -> None:
        """Create or rename the platform's folders."""
        for folder in FOLDERS:
            key = f"folder:{folder.uid}"
            current = self._get(key, self.api.folder.get_folder, folder.uid)
            if current is None:
                self._write(key, self.api.folder.create_folder, folder.title, uid=folder.uid)
                self.report.created.append(key)
            elif current.get("title") != folder.title:
                self._write(
                    key,
                    self.api.folder.update_folder,
                    folder.uid,
                    title=folder.title,
                    overwrite=True,
                )
                self.report.updated.append(key)
            else:
                self.report.unchanged.append(key)

    def datasources(self) -> None:
        """Create or update the data sources; a stored password is not re-sent."""
        for src in all_sources(self.sources):
            key = f"datasource:{src['uid']}"
            current = self._get(key, self.api.datasource.get_datasource_by_uid, src["uid"])
            if current is None:
                self._write(key, self.api.datasource.create_datasource, src)
                self.report.created.append(key)
                continue
            plain = {k: v for k, v in src.items() if k != "secureJsonData"}
            stored_secrets = current.get("secureJsonFields") or {}
            missing_secret = any(
                not stored_secrets.get(name) for name in src.get("secureJsonData", {})
            )
            if contains(current, plain) and not missing_secret:
                self.report.unchanged.append(key)
                continue
            self._write(key, self.api.datasource.update_datasource_by_uid, src["uid"], src)
            self.report.updated.append(key)

    def dashboards(self) -> None:
        """Create or overwrite dashboards whose model or folder differs."""
        for dash in DASHBOARDS:
            key = f"dashboard:{dash.uid}"
            model = dash.to_json()
            current = self._get(key, self.api.dashboard.get_dashboard, dash.uid)
            if current is not None:
                stored: JSON = current.get("dashboard") or {}
                folder = (current.get("meta") or {}).get("folderUid")
                if folder == dash.folder_uid and contains(stored, model):
                    self.report.unchanged.append(key)
                    continue
            body = {
                "dashboard": {**model, "id": None},
                "folderUid": dash.folder_uid,
                "overwrite": True,
                "message": PUSH_MESSAGE,
            }
            self._write(key, self.api.dashboard.update_dashboard, body)
            (self.report.created if current is None else self.report.updated).append(key)

    def alert_rules(self) -> None:
        """Create or update the technical alert rules."""
        for rule in ALERT_RULES:
            key = f"alert-rule:{rule.uid}"
            body = rule.to_api()
            current = self._get(key, self.api.alertingprovisioning.get_alertrule, rule.uid)
            if current is None:
                self._write(key, self.api.alertingprovisioning.create_alertrule, body)
                self.report.created.append(key)
            elif contains(current, body):
                self.report.unchanged.append(key)
            else:
                self._write(key, self.api.alertingprovisioning.update_alertrule, rule.uid, body)
                self.report.updated.append(key)

    def run(self) -> PushReport:
        """Push everything, in dependency order; return what changed."""
        self.folders()
        self.datasources()
        self.dashboards()
        self.alert_rules()
        logger.info("grafana provisioning: %s", self.report.summary())
        return self.report


def connect(url: str, token: str | None = None, user: str | None = None, password: str = "") -> Any:
    """A `GrafanaApi` for `url`, authenticated by API token or by user and password."""
    from grafana_client.api import GrafanaApi

    credential: str | tuple[str, str] | None
    if token:
        credential = token
    elif user:
        credential = (user, password)
    else:
        raise PushError("give a Grafana API token (--token) or a user (--user and a password)")
    return GrafanaApi.from_url(url, credential=credential, timeout=10.0)


def push(api: Any, sources: SourcesConfig) -> PushReport:
    """Provision folders, data sources, dashboards and alert rules; idempotent."""
    return Provisioner(api, sources).run()
