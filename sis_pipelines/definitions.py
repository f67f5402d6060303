"""The Dagster definitions of sis_pipelines: ``sis_pipelines.definitions:defs``."""

from datetime import timedelta

import dagster as dg

from .defs.automation.jobs import nightly_job, term_change_job
from .defs.automation.schedules import nightly_schedule
from .defs.automation.sensors import tenant_onboarding_sensor, term_change_sensor
from .defs.canvas.assets import canvas_assets
from .defs.gpb.assets import gpb_assets
from .defs.oneroster.assets import oneroster_assets
from .defs.resources import default_resources
from .memory import settle_loaded_code

# Nightly assets are expected every night: warn after a missed night, fail after a day more.
NIGHTLY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=48), warn_window=timedelta(hours=26)
)

defs = dg.Definitions(
    assets=[*oneroster_assets, *canvas_assets, *gpb_assets],
    jobs=[nightly_job, term_change_job],
    schedules=[nightly_schedule],
    sensors=[tenant_onboarding_sensor, term_change_sensor],
    resources=default_resources(),
).permissive_map_resolved_asset_specs(
    func=lambda spec: spec.replace_attributes(freshness_policy=NIGHTLY_FRESHNESS),
    selection=dg.AssetSelection.all().materializable(),
)

settle_loaded_code()  # step boundaries collect only what steps made
