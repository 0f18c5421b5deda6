"""The API test fixtures (registry, one user per role, TestClient) reused by the rate tests."""

from tests.api.conftest import client, db_seed, settings, world  # noqa: F401
