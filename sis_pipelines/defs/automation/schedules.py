"""The nightly schedule: one run per enabled, registered tenant for the night just ended."""

import os
from datetime import timedelta

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from ...core.nights import deployment_timezone
from ...core.tags import tenant_tags
from ...core.tenants import TenantsFileError, load_tenants
from ..partitions import partition_key, registered
from ..selection import tenant_selection
from .jobs import nightly_job


@dg.schedule(
    job=nightly_job,
    cron_schedule=os.environ.get("SIS_PIPELINES_NIGHTLY_CRON", "30 2 * * *"),
    execution_timezone=deployment_timezone(),
    name="nightly_schedule",
    description=(
        "Every night (SIS_PIPELINES_NIGHTLY_CRON in SIS_PIPELINES_TIMEZONE, 02:30 by default), "
        "one run of the nightly job per enabled, registered tenant for the night just ended."
    ),
)
def nightly_schedule(context: dg.ScheduleEvaluationContext):
    night = (context.scheduled_execution_time - timedelta(days=1)).date()
    try:
        tenants = load_tenants().tenants
    except TenantsFileError as exc:
        return dg.SkipReason(str(exc))
    known = set(registered(context.instance))
    requests = [
        dg.RunRequest(
            run_key=str(partition_key(tenant_id, night)),
            partition_key=partition_key(tenant_id, night),
            tags=tenant_tags(tenant_id, tenant.vendor),
            asset_selection=tenant_selection(tenant),
        )
        for tenant_id, tenant in sorted(tenants.items())
        if tenant.enabled and tenant_id in known
    ]
    return requests or dg.SkipReason(
        "no enabled tenant is registered; run `sis-pipelines tenants sync`"
    )


def tenant_freshness_schedule(job: UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="tenant_freshness_schedule",
        job=job,
        cron_schedule=os.environ.get("SIS_PIPELINES_FRESHNESS_CRON", "0 7 * * *"),
        execution_timezone=deployment_timezone(),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Every morning (SIS_PIPELINES_FRESHNESS_CRON, 07:00 by default), each tenant's "
            "night_arrived check: a district whose night did not arrive is flagged on its own page."
        ),
    )
