"""The Dagster definitions of sis_pipelines: ``sis_pipelines.definitions:defs``."""

from __future__ import annotations

import dagster as dg

from .defs.canvas import canvas_assets
from .defs.jobs import nightly_job, nightly_schedule
from .defs.oneroster import oneroster_assets
from .defs.resources import default_resources
from .defs.sensors import tenant_onboarding_sensor, term_change_job, term_change_sensor

defs = dg.Definitions(
    assets=[*oneroster_assets, *canvas_assets],
    jobs=[nightly_job, term_change_job],
    sensors=[tenant_onboarding_sensor, term_change_sensor],
    schedules=[nightly_schedule],
    resources=default_resources(),
)
