"""dashboards package of the oxygen platform."""
