"""The reporting chain: facility daily report → SYT report → BYT national view, supplier report.

Figures are live (facility reports merged with telemetry at read time); sending an SYT report
freezes a revision. See docs/reports.md.
"""
