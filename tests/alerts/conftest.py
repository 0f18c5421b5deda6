"""The alerts tests reuse the API tests' registry, users and client fixtures."""

from tests.api.conftest import client, db_seed, settings, world  # noqa: F401
