"""Alerts and notifications: rules, lifecycle, channels."""
