"""The facility directory and scoped device listings (JSON, every logged-in role)."""
