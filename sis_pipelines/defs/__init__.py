"""The Dagster layer: thin wrappers over the domain packages."""
