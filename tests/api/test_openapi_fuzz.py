"""Schemathesis against the application's own OpenAPI document: generated requests (with a valid
administrator's bearer token, so the handlers are reached) never produce a 5xx or a response that
violates the schema. The app runs in-process; requests go through Starlette's TestClient
(schemathesis' own requests transport does not work with the urllib3-future the lock installs)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
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
from oxy.settings import Settings
from tests.api.conftest import add_user

MAX_EXAMPLES = int(os.environ.get("OXY_FUZZ_EXAMPLES", "10"))
# OXY_FUZZ_CONFORMANCE=1 also runs schemathesis' conformance checks (documented status codes,
# content types, headers, invalid input refused, valid input accepted) and prints the number of
# distinct violations (operation × check) instead of failing: the contract's remaining debt.
CONFORMANCE = os.environ.get("OXY_FUZZ_CONFORMANCE") == "1"
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
def fuzz_client(module_db_url: str) -> Iterator[TestClient]:
    """One migrated database and one running app for the whole module."""
    with psycopg.connect(module_db_url) as conn:
        uid = add_user(conn, "fuzz-admin", "admin", None)
        conn.execute(
            "INSERT INTO api_tokens (user_id, name, token_hash, prefix) VALUES (%s, 'f', %s, 'f')",
            (uid, digest(TOKEN)),
        )
    with TestClient(create_app(Settings(database_url=module_db_url))) as client:
        yield client


def _fuzz(client: TestClient, operation: Any, checks: list[Any] | None = None) -> int:
    checks = checks or [not_a_server_error, response_schema_conformance]
    sent = [0]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: schemathesis.Case) -> None:
        kw = case.as_transport_kwargs(
            base_url="http://testserver", headers={"Authorization": f"Bearer {TOKEN}"}
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


@pytest.mark.skipif(not CONFORMANCE, reason="a measurement: set OXY_FUZZ_CONFORMANCE=1")
def test_conformance_violations(fuzz_client: TestClient) -> None:
    """Count the distinct (operation, check) violations of schemathesis' conformance checks."""
    schema = schemathesis.openapi.from_dict(fuzz_client.app.openapi())  # type: ignore[attr-defined]
    violations: set[tuple[str, str]] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        name = f"{operation.method.upper()} {operation.path}"
        try:
            _fuzz(fuzz_client, operation, CONFORMANCE_CHECKS)
        except BaseExceptionGroup as exc:  # schemathesis' FailureGroup
            for failure in getattr(exc, "exceptions", [exc]):
                violations.add((name, str(getattr(failure, "title", type(failure).__name__))))
    by_check: dict[str, int] = {}
    for _, title in violations:
        by_check[title] = by_check.get(title, 0) + 1
    print(f"conformance violations: {len(violations)} {dict(sorted(by_check.items()))}")
    for op, title in sorted(violations):
        print(f"  {op}: {title}")


def test_the_document_lists_our_endpoints(fuzz_client: TestClient) -> None:
    paths = fuzz_client.app.openapi()["paths"]  # type: ignore[attr-defined]
    for path in ("/health", "/api/me", "/api/tokens", "/api/audit", "/api/facilities"):
        assert path in paths, path
    # HTML pages and form posts are not part of the API document.
    assert "/login" not in paths and "/admin/users" not in paths
