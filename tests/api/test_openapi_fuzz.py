"""Schemathesis against the application's own OpenAPI document: generated requests (with a valid
administrator's bearer token, so the handlers are reached) never produce a 5xx or a response that
violates the schema, and schemathesis' conformance checks find 0 violations — in-process through
Starlette's TestClient and over HTTP against uvicorn in a child process. Requests are sent with
our own clients (schemathesis' requests transport does not work with the urllib3-future the lock
installs)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.auth import digest
from api.dates import EARLIEST_DAY, latest_day, schema_dates
from oxy.settings import Settings
from tests.api.conftest import add_user
from tests.fix_mqtt import free_port

MAX_EXAMPLES = int(os.environ.get("OXY_FUZZ_EXAMPLES", "10"))
# schemathesis' conformance checks (documented status codes, content types, headers, invalid
# input refused, valid input accepted): every operation, 0 violations.
CONFORMANCE_EXAMPLES = int(os.environ.get("OXY_FUZZ_CONFORMANCE_EXAMPLES", "5"))
CONFORMANCE_CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]

TOKEN = "oxy_fuzz-admin-token"
SENT_KEYS = ("params", "headers", "cookies", "json", "data", "files", "content")


@pytest.fixture(scope="module")
def fuzz_db(module_db_url: str) -> str:
    """One migrated database (with the fuzzing administrator's token) for the whole module."""
    with psycopg.connect(module_db_url) as conn:
        uid = add_user(conn, "fuzz-admin", "admin", None)
        conn.execute(
            "INSERT INTO api_tokens (user_id, name, token_hash, prefix) VALUES (%s, 'f', %s, 'f')",
            (uid, digest(TOKEN)),
        )
    return module_db_url


@pytest.fixture(scope="module")
def fuzz_client(fuzz_db: str) -> Iterator[TestClient]:
    """The app in-process (Starlette's TestClient)."""
    with TestClient(create_app(Settings(database_url=fuzz_db))) as client:
        yield client


@pytest.fixture(scope="module")
def live_client(fuzz_db: str) -> Iterator[httpx.Client]:
    """The app served by uvicorn in a child process on a free loopback port, over real HTTP."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        ],
        env={**os.environ, "OXY_DATABASE_URL": fuzz_db},
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=base, timeout=30) as client:
            while True:
                assert server.poll() is None, "uvicorn exited"
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "uvicorn did not answer /health in 60 s"
                time.sleep(0.2)
            yield client
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


def _in_range_dates() -> None:
    """Generate `date` / `date-time` strings inside the range the document declares
    (`formatMinimum` / `formatMaximum`, checked by test_the_document_declares_the_date_range):
    JSON Schema has no standard bound for formatted strings, so schemathesis learns it here."""
    earliest, latest = EARLIEST_DAY, latest_day()
    schemathesis.openapi.format(
        "date", st.dates(min_value=earliest, max_value=latest).map(date.isoformat)
    )
    schemathesis.openapi.format(
        "date-time",
        st.datetimes(
            min_value=datetime.combine(earliest, datetime.min.time()),
            max_value=datetime.combine(latest, datetime.max.time()),
            timezones=st.just(UTC),
        ).map(lambda v: v.isoformat().replace("+00:00", "Z")),
    )


_in_range_dates()


def _fuzz(
    client: TestClient | httpx.Client,
    operation: Any,
    checks: list[Any] | None = None,
    examples: int = MAX_EXAMPLES,
    base_url: str = "http://testserver",
) -> int:
    checks = checks or [not_a_server_error, response_schema_conformance]
    sent = [0]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: schemathesis.Case) -> None:
        kw = case.as_transport_kwargs(
            base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        args = {k: kw[k] for k in SENT_KEYS if kw.get(k) is not None}
        cookies = args.pop("cookies", None)
        client.cookies.clear()
        if cookies:
            client.cookies.update(cookies)
        response = client.request(kw["method"], kw["url"], **args)
        sent[0] += 1
        case.validate_response(response, checks=checks)

    run()
    return sent[0]


@pytest.mark.slow  # fuzzes every operation
def test_api_conforms_to_its_schema(fuzz_client: TestClient) -> None:
    schema = schemathesis.openapi.from_dict(fuzz_client.app.openapi())  # type: ignore[attr-defined]
    failures: list[str] = []
    operations = requests = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            requests += _fuzz(fuzz_client, operation)
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    print(
        f"fuzzed {operations} operations, {requests} requests in {time.monotonic() - started:.1f}s"
    )
    assert operations >= 8 and requests >= operations
    assert failures == [], "\n\n".join(failures)


@pytest.mark.slow  # fuzzes every operation (the slow tier runs in CI)
def test_the_api_keeps_its_contract(fuzz_client: TestClient) -> None:
    """schemathesis' conformance checks find no violation in any operation."""
    violations = _conformance(fuzz_client, "http://testserver")
    assert violations == [], "\n\n".join(violations)


def _conformance(client: Any, base_url: str) -> list[str]:
    """The distinct (operation, check) violations, each with schemathesis' explanation."""
    schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    found: dict[tuple[str, str], str] = {}
    started = time.monotonic()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        name = f"{operation.method.upper()} {operation.path}"
        try:
            _fuzz(client, operation, CONFORMANCE_CHECKS, CONFORMANCE_EXAMPLES, base_url)
        except BaseExceptionGroup as exc:  # schemathesis' FailureGroup
            for failure in getattr(exc, "exceptions", [exc]):
                title = str(getattr(failure, "title", type(failure).__name__))
                found.setdefault((name, title), f"{name}: {title}\n{failure}")
        except Exception as exc:  # a single failure
            title = str(getattr(exc, "title", type(exc).__name__))
            found.setdefault((name, title), f"{name}: {title}\n{exc}")
    print(
        f"conformance at {base_url}: {operations} operations, {len(found)} violations "
        f"in {time.monotonic() - started:.1f}s"
    )
    assert operations >= 8
    return [found[k] for k in sorted(found)]


@pytest.mark.slow  # fuzzes every operation over HTTP (the slow tier runs in CI)
def test_the_live_server_keeps_its_contract(live_client: httpx.Client) -> None:
    """The same checks over real HTTP against uvicorn (headers, content types and status codes
    as a client sees them, not as the in-process transport produces them); fewer examples per
    operation (OXY_FUZZ_CONFORMANCE_EXAMPLES) keep it short enough for CI."""
    violations = _conformance(live_client, str(live_client.base_url).rstrip("/"))
    assert violations == [], "\n\n".join(violations)
    # ... and the generic no-5xx / response-schema checks pass over HTTP as well.
    schema = schemathesis.openapi.from_dict(live_client.get("/openapi.json").json())
    base = str(live_client.base_url).rstrip("/")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            _fuzz(live_client, operation, examples=CONFORMANCE_EXAMPLES, base_url=base)
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert failures == [], "\n\n".join(failures)


def test_the_document_declares_the_date_range(fuzz_client: TestClient) -> None:
    """Every date and date-time in the document carries the range the application enforces."""
    dated = list(schema_dates(fuzz_client.get("/openapi.json").json()))
    assert len(dated) >= 20
    for node in dated:
        assert node["formatMinimum"].startswith(EARLIEST_DAY.isoformat()), node
        assert node["formatMaximum"].startswith(latest_day().isoformat()), node
        assert "date_out_of_range" in node["description"]


def test_the_document_lists_our_endpoints(fuzz_client: TestClient) -> None:
    paths = fuzz_client.app.openapi()["paths"]  # type: ignore[attr-defined]
    for path in ("/health", "/api/me", "/api/tokens", "/api/audit", "/api/facilities"):
        assert path in paths, path
    # HTML pages and form posts are not part of the API document.
    assert "/login" not in paths and "/admin/users" not in paths
