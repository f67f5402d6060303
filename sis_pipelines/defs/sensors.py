"""Sensors: tenants follow the tenants file; term changes re-derive Canvas from stored nights."""

from datetime import date

import dagster as dg

from ..canvas.mapping import term_signature
from ..storage import data_dir, output_path, read_frame, stored_nights
from ..tenants import TenantsFileError, load_tenants, tenants_path
from .canvas import DELTA, MAPPING
from .partitions import partition_key, tenant_night, tenant_partitions

SESSIONS = dg.AssetKey(["oneroster", "academic_sessions"])
BACKFILL_TAG = "sis_pipelines/backfill"

# Re-derives Canvas from stored snapshots: never fetches from the SIS, never uploads.
term_change_job = dg.define_asset_job(
    "term_change_backfill",
    selection=dg.AssetSelection.assets(MAPPING, DELTA),
    partitions_def=tenant_night,
    executor_def=dg.in_process_executor,
    description="Canvas mapping and delta of a tenant re-derived from stored snapshots after a term change.",
)


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Keeps the `tenant` partitions in step with the tenants file.",
)
def tenant_onboarding_sensor(
    context: dg.SensorEvaluationContext,
) -> dg.SensorResult | dg.SkipReason:
    try:
        tenants = load_tenants(tenants_path()).tenants
    except TenantsFileError as exc:
        return dg.SkipReason(str(exc))
    known = set(context.instance.get_dynamic_partitions("tenant"))
    # Disabled tenants keep their partition (and their data); the schedule skips them.
    new = sorted(t for t, cfg in tenants.items() if cfg.enabled and t not in known)
    if not new:
        return dg.SkipReason("every enabled tenant is registered")
    context.log.info(f"registering tenants: {', '.join(new)}")
    return dg.SensorResult(dynamic_partitions_requests=[tenant_partitions.build_add_request(new)])


def affected_nights(root: str, tenant: str, night: date, canvas_cfg) -> list[date]:
    """Nights to re-derive when ``night``'s sessions change the Canvas terms: it and every later stored night."""
    nights = [
        date.fromisoformat(n) for n in stored_nights(root, "oneroster", "academic_sessions", tenant)
    ]
    earlier = [n for n in nights if n < night]
    if not earlier or night not in nights:
        return []

    def signature(n: date) -> str:
        return term_signature(
            read_frame(output_path(root, "oneroster", "academic_sessions", str(n), tenant)),
            canvas_cfg,
        )

    if signature(earlier[-1]) == signature(night):
        return []
    return [n for n in nights if n >= night]


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
        tenants = load_tenants(tenants_path()).tenants
    except TenantsFileError as exc:
        return dg.SensorResult(skip_reason=str(exc))
    root = data_dir()
    requests = []
    for record in records:
        # Multi-partition keys join the dimensions in name order: night|tenant.
        night_s, _, tenant_id = (record.partition_key or "").partition("|")
        tenant = tenants.get(tenant_id or "")
        if tenant is None or tenant.canvas is None or not night_s:
            continue
        night = date.fromisoformat(night_s)
        for affected in affected_nights(root, tenant_id, night, tenant.canvas):  # type: ignore[arg-type]
            key = partition_key(tenant_id, affected)  # type: ignore[arg-type]
            requests.append(
                dg.RunRequest(
                    run_key=f"term-change:{tenant_id}:{night_s}:{affected}",
                    partition_key=str(key),
                    tags={
                        BACKFILL_TAG: f"term-change {night_s}",
                        "tenant": tenant_id,
                        "sis_vendor": tenant.vendor,
                    },
                )
            )
    return dg.SensorResult(run_requests=requests, cursor=str(records[-1].storage_id))
