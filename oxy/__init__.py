"""Core of the oxygen platform: the wire contract, settings, database access and the `oxy` CLI."""

__version__ = "0.1.0"


class OxyError(Exception):
    """Root of every error the platform raises on purpose."""
