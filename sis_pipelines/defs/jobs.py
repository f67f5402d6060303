"""The nightly job and its schedule: one run per enabled tenant for the night just ended."""

import os
from datetime import timedelta

import dagster as dg

from ..tenants import TenantsFileError, load_tenants, tenants_path
from .partitions import partition_key, tenant_night, tenant_partitions

nightly_job = dg.define_asset_job(
    "nightly",
    selection=dg.AssetSelection.all(),
    partitions_def=tenant_night,
    # One process per tenant-night: steps are short and a subprocess per step costs seconds.
    executor_def=dg.in_process_executor,
    description="Every asset of one tenant for one night.",
)


@dg.schedule(
    job=nightly_job,
    cron_schedule=os.environ.get("SIS_PIPELINES_NIGHTLY_CRON", "30 2 * * *"),
    execution_timezone=os.environ.get("SIS_PIPELINES_TIMEZONE", "UTC"),
    name="nightly_schedule",
)
def nightly_schedule(context: dg.ScheduleEvaluationContext):
    night = (context.scheduled_execution_time - timedelta(days=1)).date()
    try:
        tenants = load_tenants(tenants_path()).tenants
    except TenantsFileError as exc:
        return dg.SkipReason(str(exc))
    known = set(tenant_partitions.get_partition_keys(dynamic_partitions_store=context.instance))
    requests = []
    for tenant_id, tenant in sorted(tenants.items()):
        if not tenant.enabled or tenant_id not in known:
            continue
        key = partition_key(tenant_id, night)
        requests.append(
            dg.RunRequest(
                run_key=str(key),
                partition_key=key,
                tags={"tenant": tenant_id, "sis_vendor": tenant.vendor},
            )
        )
    return requests or dg.SkipReason(
        "no enabled tenant is registered; run `sis-pipelines tenants sync`"
    )
