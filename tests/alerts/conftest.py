"""The alerts tests reuse the API tests' registry, users and client fixtures."""

from tests.api.conftest import client, settings, world  # noqa: F401
