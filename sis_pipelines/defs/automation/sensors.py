"""Sensors: tenants follow the tenants file; term changes re-derive Canvas from stored nights."""

from datetime import date

import dagster as dg

from ...canvas.provision import term_change
from ...core.lake import Lake
from ...core.tags import BACKFILL, tenant_tags
from ...core.tenants import TenantsFileError, load_tenants
from ..keys import SESSIONS
from ..partitions import partition_key, registration_request, split_key
from .connection_check import check_request, connection_check_job
from .jobs import term_change_job


@dg.sensor(
    jobs=[connection_check_job],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Keeps the `tenant` partitions in step with the tenants file, and checks each new tenant's connections (connection_check).",
)
def tenant_onboarding_sensor(
    context: dg.SensorEvaluationContext,
) -> dg.SensorResult | dg.SkipReason:
    try:
        tenants = load_tenants()
    except TenantsFileError as exc:
        return dg.SkipReason(str(exc))
    # Disabled tenants keep their partition (and their data); the schedule skips them.
    request = registration_request(context.instance, tenants)
    if request is None:
        return dg.SkipReason("every enabled tenant is registered")
    context.log.info(f"registering tenants: {', '.join(request.partition_keys)}")
    checks = [
        check_request(t, tenant_tags(t, tenants.tenants[t].vendor)) for t in request.partition_keys
    ]
    return dg.SensorResult(dynamic_partitions_requests=[request], run_requests=checks)


@dg.sensor(
    job=term_change_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a tenant's academic sessions change its Canvas terms (a new term, changed dates, a rollover), re-derives the Canvas mapping and delta of the affected nights from stored snapshots.",
)
def term_change_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    after = int(context.cursor or 0)
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=SESSIONS, after_storage_id=after), limit=200, ascending=True
    ).records
    if not records:
        return dg.SensorResult(skip_reason="no new academic sessions")
    try:
        tenants = load_tenants().tenants
    except TenantsFileError as exc:
        return dg.SensorResult(skip_reason=str(exc))
    lake = Lake.at()
    requests = []
    for record in records:
        night_s, tenant_id = split_key(record.partition_key or "")
        tenant = tenants.get(tenant_id)
        if tenant is None or tenant.canvas is None or not night_s:
            continue
        night = date.fromisoformat(night_s)
        change = term_change(lake, tenant_id, night, tenant.canvas)
        if change.rollover:
            context.log.info(
                f"tenant {tenant_id}: the school year rolled over on {night_s} (none of the "
                "terms of the night before remain): last year's courses are concluded, not "
                "deleted; re-deriving the nights from it"
            )
        for affected in change.nights:
            requests.append(
                dg.RunRequest(
                    run_key=f"{change.kind}:{tenant_id}:{night_s}:{affected}",
                    partition_key=str(partition_key(tenant_id, affected)),
                    tags={
                        BACKFILL: f"{change.kind} {night_s}",
                        **tenant_tags(tenant_id, tenant.vendor),
                    },
                )
            )
    return dg.SensorResult(run_requests=requests, cursor=str(records[-1].storage_id))
