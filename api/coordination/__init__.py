"""Coordination: support requests, assignments, deliveries and suggested allocations."""
