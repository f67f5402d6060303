"""Canvas SIS Import: mapping from OneRoster, deltas, packaging and the sis_imports API (no Dagster)."""
