"""sis_pipelines: OneRoster SIS data into Canvas LMS, per tenant, on Dagster."""

__version__ = "0.1.0"
