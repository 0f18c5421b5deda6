"""The core pages and JSON endpoints (login, home, accounts, audit trail, directory)."""
