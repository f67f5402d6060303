"""The Dagster definitions of sis_pipelines: ``sis_pipelines.definitions:defs``."""

from __future__ import annotations

import dagster as dg

from .defs.canvas import canvas_assets
from .defs.jobs import nightly_job, nightly_schedule
from .defs.oneroster import oneroster_assets
from .defs.resources import default_resources

defs = dg.Definitions(
    assets=[*oneroster_assets, *canvas_assets],
    jobs=[nightly_job],
    schedules=[nightly_schedule],
    resources=default_resources(),
)
