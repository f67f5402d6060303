"""Jobs, the nightly schedule and the sensors that keep tenants and terms in step."""

from .jobs import nightly_job, term_change_job
from .schedules import nightly_schedule
from .sensors import tenant_onboarding_sensor, term_change_sensor

__all__ = [
    "nightly_job",
    "nightly_schedule",
    "tenant_onboarding_sensor",
    "term_change_job",
    "term_change_sensor",
]
