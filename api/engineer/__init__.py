"""Engineers' pages: gateways (online/offline, outbox, evictions, versions, Modbus devices, last
reading of each sensor) and tank diagnostics (DP, head pressure, contents, quality over time,
gaps, conflicts, quarantined readings), each with a link to the matching Grafana dashboard."""
