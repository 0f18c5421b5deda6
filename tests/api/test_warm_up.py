"""The app's start warms up (api.app.warm_up): every page template is compiled and the routers
walked before the first request, without an error. The other in-process tests skip the warm-up
(tests/conftest.py); this one keeps it."""

from __future__ import annotations

import gc
import logging

import pytest
from fastapi.testclient import TestClient

import api.app
from api.app import create_app
from api.web.templating import environment
from oxy.settings import Settings


@pytest.mark.warm_up
def test_the_start_compiles_every_template_before_the_first_request(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    env = environment()
    assert env.cache is not None
    env.cache.clear()
    names = env.list_templates(extensions=["html"])
    assert names
    app = create_app(Settings(database_url=db_url))
    with caplog.at_level(logging.WARNING, logger="api.app"), TestClient(app) as client:
        compiled = {key[1] for key in env.cache}
        assert set(names) <= compiled, set(names) - compiled
        assert client.get("/health").status_code == 200
        # What the start built is frozen out of the collector's full collections.
        assert gc.get_freeze_count() > 0
    gc.unfreeze()
    assert not [r for r in caplog.records if "warm-up" in r.getMessage()]


def test_the_other_tests_start_without_it() -> None:
    """The skip is the suite's (tests/conftest.py), not the app's: the name the start calls is
    replaced for this test only."""
    assert api.app.warm_up.__module__ == "tests.conftest"
