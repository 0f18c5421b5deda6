"""Grafana dashboards, data sources and alert rules of the oxygen platform, defined as code."""
