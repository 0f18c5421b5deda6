"""`python -m ingest run ...`: the same as `oxy ingest run ...`."""

from ingest.cli import ingest_app

if __name__ == "__main__":
    ingest_app()
