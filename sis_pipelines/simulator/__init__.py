"""A OneRoster provider for tests, demos and benchmarks: synthetic districts over real HTTP."""
