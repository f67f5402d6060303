"""The Dagster definitions of sis_pipelines: ``sis_pipelines.definitions:defs``."""

import dagster as dg

from .core.memory import settle_loaded_code
from .defs.automation.connection_check import connection_check_job
from .defs.automation.jobs import nightly_job, tenant_freshness_job, term_change_job
from .defs.automation.schedules import nightly_schedule, tenant_freshness_schedule
from .defs.automation.sensors import tenant_onboarding_sensor, term_change_sensor
from .defs.canvas.assets import canvas_assets
from .defs.gpb.assets import gpb_assets
from .defs.gpb.sync import grade_sync_job, grade_sync_sensors
from .defs.oneroster.assets import oneroster_assets
from .defs.resources import default_resources
from .defs.tenants.assets import tenant_pages

# Freshness is each tenant's own (tenants/<tenant>: night_arrived): a freshness policy on a
# tenant x night asset is met by any tenant's night, so a stopped district would look fresh.
pages, freshness = tenant_pages()
freshness_job = [tenant_freshness_job(freshness)] if freshness else []

defs = dg.Definitions(
    assets=[*oneroster_assets, *canvas_assets, *gpb_assets, *pages],
    asset_checks=[freshness] if freshness else [],
    jobs=[nightly_job, term_change_job, connection_check_job, grade_sync_job, *freshness_job],
    schedules=[nightly_schedule, *map(tenant_freshness_schedule, freshness_job)],
    sensors=[tenant_onboarding_sensor, term_change_sensor, *grade_sync_sensors()],
    resources=default_resources(),
)

settle_loaded_code()  # step boundaries collect only what steps made
