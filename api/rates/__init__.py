"""Reporting rate (DHIS2's reference): expected, reported, on time, late and missing facility
reports per reporting parent and per facility over a period, with who to contact."""
