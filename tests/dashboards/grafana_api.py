"""A local HTTP server that speaks the part of Grafana's documented HTTP API the provisioning uses,
and refuses anything that does not follow it (wrong path or method, missing auth, missing
required fields, dangling references). It keeps state, so idempotence is observable: Grafana
bumps a dashboard's version on every save, and so does this server.

Documented API (Grafana 11):
  data sources  GET /api/datasources/uid/:uid, POST /api/datasources, PUT /api/datasources/uid/:uid
  folders       GET /api/folders/:uid, POST /api/folders, PUT /api/folders/:uid
  dashboards    GET /api/dashboards/uid/:uid, POST /api/dashboards/db
  alert rules   GET/PUT /api/v1/provisioning/alert-rules/:uid, POST /api/v1/provisioning/alert-rules
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "glsa_test_token"
ADMIN = ("admin", "s3cret")
DURATION = re.compile(r"^\d+(ms|s|m|h|d)$")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    method: str
    path: str
    body: Any


@dataclass
class GrafanaState:
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboard_folder: dict[str, str] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1
    log: list[Request] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    @property
    def writes(self) -> list[Request]:
        return [r for r in self.log if r.method != "GET"]


def _require(body: Any, *names: str) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    missing = [n for n in names if n not in body or body[n] in (None, "")]
    if missing:
        raise ApiError(400, f"missing required fields: {missing}")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        if header == f"Bearer {TOKEN}":
            return True
        if header.startswith("Basic "):
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
            return (user, pw) == ADMIN
        return False

    def _handle(self, method: str) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        try:
            if not self._authorised():
                raise ApiError(401, "Unauthorized")
            if method in {"POST", "PUT"}:
                ctype = self.headers.get("Content-Type", "")
                if not ctype.startswith("application/json"):
                    raise ApiError(415, f"Content-Type must be application/json, got {ctype!r}")
                try:
                    body = json.loads(raw)
                except ValueError as exc:
                    raise ApiError(400, "bad JSON") from exc
            with self.server.lock:
                state.log.append(Request(method, self.path, copy.deepcopy(body)))
                status, payload = route(state, method, self.path, body)
        except ApiError as exc:
            if exc.status in {400, 401, 405, 415}:
                state.violations.append(f"{method} {self.path}: {exc.message}")
            status, payload = exc.status, {"message": exc.message}
        self._reply(status, payload)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = GrafanaState()
        self.lock = threading.Lock()


def _datasource_view(state: GrafanaState, ds: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(ds)
    out["secureJsonFields"] = {k: True for k in state.secrets.get(ds["uid"], {})}
    return out


def _check_datasource(body: Any) -> None:
    _require(body, "name", "type", "access")
    if body["access"] not in {"proxy", "direct"}:
        raise ApiError(400, "access must be proxy or direct")
    if "jsonData" in body and not isinstance(body["jsonData"], dict):
        raise ApiError(400, "jsonData must be an object")


def _check_rule(state: GrafanaState, body: Any) -> None:
    _require(
        body,
        "title",
        "folderUID",
        "ruleGroup",
        "condition",
        "data",
        "noDataState",
        "execErrState",
        "for",
    )
    if body["folderUID"] not in state.folders:
        raise ApiError(400, f"folder {body['folderUID']} does not exist")
    if body["noDataState"] not in {"OK", "NoData", "Alerting"}:
        raise ApiError(400, "bad noDataState")
    if body["execErrState"] not in {"OK", "Error", "Alerting"}:
        raise ApiError(400, "bad execErrState")
    if not DURATION.match(str(body["for"])):
        raise ApiError(400, "bad for")
    refs = [q.get("refId") for q in body["data"]]
    if body["condition"] not in refs:
        raise ApiError(400, "condition must name a refId in data")
    for q in body["data"]:
        _require(q, "refId", "datasourceUid", "model")
        if q["datasourceUid"] != "__expr__" and q["datasourceUid"] not in state.datasources:
            raise ApiError(400, f"data source {q['datasourceUid']} does not exist")
        if q["datasourceUid"] != "__expr__":
            _require(q, "relativeTimeRange")


def route(state: GrafanaState, method: str, path: str, body: Any) -> tuple[int, Any]:
    """Apply one request to the state, as Grafana would."""
    m = re.fullmatch(r"/api/datasources/uid/([\w-]+)", path)
    if m:
        uid = m.group(1)
        if method == "GET":
            if uid not in state.datasources:
                raise ApiError(404, "Data source not found")
            return 200, _datasource_view(state, state.datasources[uid])
        if method == "PUT":
            if uid not in state.datasources:
                raise ApiError(404, "Data source not found")
            _check_datasource(body)
            old = state.datasources[uid]
            new = {k: v for k, v in body.items() if k != "secureJsonData"}
            new.update(uid=uid, id=old["id"], version=old["version"] + 1)
            state.datasources[uid] = new
            if "secureJsonData" in body:
                state.secrets[uid] = dict(body["secureJsonData"])
            return 200, {"datasource": new, "id": new["id"], "message": "Datasource updated"}
        raise ApiError(405, "method not allowed")
    if path == "/api/datasources":
        if method != "POST":
            raise ApiError(405, "method not allowed")
        _check_datasource(body)
        uid = body.get("uid") or f"ds{state.next_id}"
        if uid in state.datasources or any(
            d["name"] == body["name"] for d in state.datasources.values()
        ):
            raise ApiError(409, "data source with the same uid or name already exists")
        new = {k: v for k, v in body.items() if k != "secureJsonData"}
        new.update(uid=uid, id=state.new_id(), version=1)
        state.datasources[uid] = new
        state.secrets[uid] = dict(body.get("secureJsonData") or {})
        return 200, {"datasource": new, "id": new["id"], "message": "Datasource added"}

    m = re.fullmatch(r"/api/folders/([\w-]+)", path)
    if m:
        uid = m.group(1)
        if uid not in state.folders:
            raise ApiError(404, "folder not found")
        if method == "GET":
            return 200, state.folders[uid]
        if method == "PUT":
            _require(body, "title")
            folder = state.folders[uid]
            if not body.get("overwrite") and body.get("version") != folder["version"]:
                raise ApiError(412, "the folder has been changed by someone else")
            folder.update(title=body["title"], version=folder["version"] + 1)
            return 200, folder
        raise ApiError(405, "method not allowed")
    if path == "/api/folders":
        if method != "POST":
            raise ApiError(405, "method not allowed")
        _require(body, "title")
        uid = body.get("uid") or f"f{state.next_id}"
        if uid in state.folders:
            raise ApiError(409, "a folder with the same uid already exists")
        state.folders[uid] = {
            "id": state.new_id(),
            "uid": uid,
            "title": body["title"],
            "version": 1,
        }
        return 200, state.folders[uid]

    m = re.fullmatch(r"/api/dashboards/uid/([\w-]+)", path)
    if m:
        if method != "GET":
            raise ApiError(405, "method not allowed")
        uid = m.group(1)
        if uid not in state.dashboards:
            raise ApiError(404, "Dashboard not found")
        dash = state.dashboards[uid]
        meta = {"folderUid": state.dashboard_folder[uid], "version": dash["version"]}
        return 200, {"dashboard": dash, "meta": meta}
    if path == "/api/dashboards/db":
        if method != "POST":
            raise ApiError(405, "method not allowed")
        _require(body, "dashboard")
        dash = body["dashboard"]
        _require(dash, "title", "uid")
        if not isinstance(dash.get("panels", []), list):
            raise ApiError(400, "panels must be a list")
        folder = body.get("folderUid") or ""
        if folder and folder not in state.folders:
            raise ApiError(400, "folder not found")
        uid = dash["uid"]
        old = state.dashboards.get(uid)
        if old is not None and not body.get("overwrite") and dash.get("version") != old["version"]:
            raise ApiError(412, "version-mismatch")
        stored = copy.deepcopy(dash)
        stored["id"] = old["id"] if old else state.new_id()
        stored["version"] = old["version"] + 1 if old else 1
        state.dashboards[uid] = stored
        state.dashboard_folder[uid] = folder
        return 200, {
            "id": stored["id"],
            "uid": uid,
            "url": f"/d/{uid}",
            "status": "success",
            "version": stored["version"],
            "slug": uid,
        }

    m = re.fullmatch(r"/api/v1/provisioning/alert-rules/([\w-]+)", path)
    if m:
        uid = m.group(1)
        if uid not in state.rules:
            raise ApiError(404, "rule not found")
        if method == "GET":
            return 200, state.rules[uid]
        if method == "PUT":
            _check_rule(state, body)
            old = state.rules[uid]
            state.rules[uid] = {**copy.deepcopy(body), "uid": uid, "id": old["id"]}
            state.rules[uid]["updated"] = f"rev-{state.new_id()}"
            return 200, state.rules[uid]
        raise ApiError(405, "method not allowed")
    if path == "/api/v1/provisioning/alert-rules":
        if method != "POST":
            raise ApiError(405, "method not allowed")
        _check_rule(state, body)
        uid = body.get("uid") or f"r{state.next_id}"
        if uid in state.rules:
            raise ApiError(409, "rule with the same uid already exists")
        rule = {**copy.deepcopy(body), "uid": uid, "id": state.new_id(), "provenance": "api"}
        rule["updated"] = f"rev-{rule['id']}"
        state.rules[uid] = rule
        return 201, rule
    raise ApiError(404, f"no such API path: {method} {path}")


class FakeGrafana:
    """The server running in a background thread on 127.0.0.1."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def state(self) -> GrafanaState:
        return self._server.state

    def start(self) -> FakeGrafana:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
