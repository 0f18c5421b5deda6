"""The platform's Grafana data sources: PostgreSQL through the read-only role, and Prometheus."""

from __future__ import annotations

from dataclasses import dataclass

from dashboards.model import JSON, POSTGRES, PROMETHEUS


@dataclass(frozen=True, slots=True)
class SourcesConfig:
    """Where Grafana finds the database and Prometheus (values as Grafana's server sees them)."""

    db_host: str = "db:5432"
    db_name: str = "oxy"
    db_user: str = "oxy_grafana"
    db_password: str | None = None
    db_sslmode: str = "disable"
    prometheus_url: str = "http://prometheus:9090"


# Environment variables Grafana expands in the file-based provisioning of the compose stack,
# so that no secret (and no site-specific host) is written into the repository.
FILE_CONFIG = SourcesConfig(
    db_host="${OXY_GRAFANA_DB_HOST}",
    db_name="${OXY_GRAFANA_DB_NAME}",
    db_user="oxy_grafana",
    db_password="${OXY_GRAFANA_DB_PASSWORD}",  # noqa: S106  (a reference Grafana expands)
    db_sslmode="${OXY_GRAFANA_DB_SSLMODE}",
    prometheus_url="${OXY_PROMETHEUS_URL}",
)


def postgres_source(cfg: SourcesConfig) -> JSON:
    """The PostgreSQL data source as `POST /api/datasources` takes it."""
    out: JSON = {
        "uid": POSTGRES.uid,
        "name": "Oxy PostgreSQL",
        "type": POSTGRES.type,
        "access": "proxy",
        "url": cfg.db_host,
        "user": cfg.db_user,
        "isDefault": False,
        # timescaledb stays false: the same macros must work on plain PostgreSQL, where
        # $__timeGroup must not expand to time_bucket().
        "jsonData": {
            "database": cfg.db_name,
            "sslmode": cfg.db_sslmode,
            "postgresVersion": 1500,
            "timescaledb": False,
            "maxOpenConns": 10,
            "maxIdleConns": 2,
            "connMaxLifetime": 14400,
        },
    }
    if cfg.db_password is not None:
        out["secureJsonData"] = {"password": cfg.db_password}
    return out


def prometheus_source(cfg: SourcesConfig) -> JSON:
    """The Prometheus data source as `POST /api/datasources` takes it."""
    return {
        "uid": PROMETHEUS.uid,
        "name": "Oxy Prometheus",
        "type": PROMETHEUS.type,
        "access": "proxy",
        "url": cfg.prometheus_url,
        "isDefault": True,
        "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
    }


def all_sources(cfg: SourcesConfig) -> list[JSON]:
    """Every data source the dashboards and alert rules use."""
    return [postgres_source(cfg), prometheus_source(cfg)]
