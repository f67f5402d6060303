"""The OneRoster collections as assets, one per collection, with their quarantine checks."""
