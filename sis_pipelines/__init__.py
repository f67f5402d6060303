"""sis_pipelines: OneRoster SIS data into Canvas LMS, per tenant, on Dagster."""

from .core.memory import return_freed_memory

__version__ = "0.1.0"

# Before any step allocates: every entry point (the CLI, Dagster's code location, its run and
# step workers, the benchmark) imports the package first.
return_freed_memory()
