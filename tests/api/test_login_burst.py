"""What a login costs the event loop and the connection pool (issue 19: 50 concurrent logins keep
/health p99 < 100 ms and login p95 < 500 ms; bench/login.py measures it)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api import i18n
from api.app import create_app
from oxy.settings import Settings


def test_the_catalogs_are_compiled_before_the_first_request(settings: Settings) -> None:
    i18n.translations.cache_clear()
    with TestClient(create_app(settings)):
        assert i18n.translations.cache_info().currsize == len(i18n.SUPPORTED)
