"""api package of the oxygen platform."""
