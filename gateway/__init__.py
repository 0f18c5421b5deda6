"""gateway package of the oxygen platform."""
