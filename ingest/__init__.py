"""ingest package of the oxygen platform."""
