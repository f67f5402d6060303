"""Intraday grade sync in Dagster: the ``grade_sync`` job (one tenant, some courses) and a
sensor per tenant that launches it when Canvas's Grade Change Log shows new grades."""

import json

import dagster as dg

from ...core.errors import SisPipelinesError
from ...core.lake import Lake
from ...core.tags import GRADE_SYNC_TRIGGER, TENANT_PARTITION, RunFlags, tenant_tags
from ...core.tenants import Tenant, TenantsFileError, load_tenants
from ...gpb.sync import changes_since, sync_grades
from ...services.connect import Services
from ..resources import DataLake, TenantsResource
from ..steps import OWNERS, explained, metadata_of

# Runs of a tenant that a sync waits for: its nightly pass reads and writes the same ledger.
ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _active_runs(
    instance: dg.DagsterInstance, tenant_id: str, but: str = "", syncs: bool = True
) -> list:
    """The tenant's queued or running runs but ``but`` (and but its syncs unless ``syncs``)."""
    records = instance.get_run_records(
        dg.RunsFilter(statuses=ACTIVE, tags={TENANT_PARTITION: tenant_id}), limit=5
    )
    return [
        r.dagster_run
        for r in records
        if r.dagster_run.run_id != but and (syncs or r.dagster_run.job_name != "grade_sync")
    ]


class GradeSyncConfig(dg.Config):
    tenant: str
    courses: list[str] = []  # SIS course ids as Canvas has them; empty: every provisioned course


@dg.op(
    name="sync_grades",
    description="Sends what the courses' Canvas gradebooks imply now to the SIS gradebook, "
    "through the ledger (unchanged grades are not sent again), converging those courses only.",
    tags={"owners": ",".join(OWNERS)},
)
def sync_grades_op(
    context: dg.OpExecutionContext,
    config: GradeSyncConfig,
    tenants: TenantsResource,
    lake: DataLake,
) -> dg.Output[None]:
    tenant = tenants.tenant(config.tenant)
    # A run from the launchpad carries no tenant tag for the queue to hold it by: it looks.
    if busy := _active_runs(context.instance, config.tenant, context.run_id, syncs=False):
        raise dg.Failure(
            description=f"tenant {config.tenant!r}: its {busy[0].job_name} run {busy[0].run_id} is "
            "queued or running and writes the same ledger; sync again when it has finished",
            allow_retries=False,
        )
    allow = RunFlags.of(context.run.tags).allow_mass_removal
    with explained():
        figures = sync_grades(
            lake.lake(), Services(lake.lake()), config.tenant, tenant, config.courses or None, allow
        )
    return dg.Output(None, metadata=metadata_of(figures))


@dg.job(
    name="grade_sync",
    description="Intraday grade passback for one tenant (config: tenant, courses); launched by "
    "the tenant's grade_sync sensor from Canvas's Grade Change Log, by sis-pipelines sync-grades, "
    "or from the launchpad.",
    executor_def=dg.in_process_executor,
)
def grade_sync_job():
    sync_grades_op()


def sync_request(
    tenant_id: str, tenant: Tenant, courses: list[str], trigger: str, key: str | None = None
) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=key,
        job_name="grade_sync",
        run_config={"ops": {"sync_grades": {"config": {"tenant": tenant_id, "courses": courses}}}},
        tags={
            **tenant_tags(tenant_id, tenant.vendor),
            # The nightly run's per-tenant queue limit holds syncs too: one at a time per tenant.
            TENANT_PARTITION: tenant_id,
            GRADE_SYNC_TRIGGER: trigger,
        },
    )


def _sensor(tenant_id: str, tenant: Tenant) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"grade_sync_{tenant_id.replace('-', '_')}",
        job=grade_sync_job,
        minimum_interval_seconds=tenant.gpb.sync_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Tenant {tenant_id}: reads Canvas's Grade Change Log of the courses it passes "
        "grades back from and launches grade_sync for the courses whose grades changed "
        "(cursor: the newest event seen).",
    )
    def grade_sync_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        return grade_sync_tick(context, tenant_id)

    return grade_sync_sensor


def grade_sync_tick(
    context: dg.SensorEvaluationContext, tenant_id: str
) -> dg.SensorResult | dg.SkipReason:
    try:
        tenant = load_tenants().tenants.get(tenant_id)
    except TenantsFileError as exc:
        return dg.SkipReason(str(exc))
    if tenant is None or not tenant.enabled:
        return dg.SkipReason(f"tenant {tenant_id!r} is not an enabled tenant of the tenants file")
    if running := _active_runs(context.instance, tenant_id):
        return dg.SkipReason(
            f"a run of tenant {tenant_id} is queued or running ({running[0].job_name}); the next tick syncs"
        )
    lake = Lake.at()
    try:
        after = json.loads(context.cursor)["after"] if context.cursor else None
        changes = changes_since(lake, Services(lake), tenant_id, tenant, after)
    except SisPipelinesError as exc:
        return dg.SkipReason(str(exc))
    if not changes.courses:
        return dg.SensorResult(
            skip_reason=f"no grade changes in Canvas since {changes.after}",
            cursor=json.dumps({"after": changes.after}),
        )
    context.log.info(
        f"{changes.events} grade changes in {len(changes.courses)} courses since {changes.after}"
    )
    return dg.SensorResult(
        run_requests=[
            sync_request(
                tenant_id,
                tenant,
                changes.courses,
                "grade_change_log",
                f"{tenant_id}:{changes.until}",
            )
        ],
        cursor=json.dumps({"after": changes.until}),
    )


def grade_sync_sensors() -> list[dg.SensorDefinition]:
    """A sensor per tenant that passes grades back and syncs between nights (from the tenants
    file; none without one)."""
    try:
        tenants = load_tenants().tenants
    except TenantsFileError:
        return []
    return [
        _sensor(t, cfg)
        for t, cfg in sorted(tenants.items())
        if cfg.gpb.endpoints != "off" and cfg.canvas is not None and cfg.gpb.sync_interval_s > 0
    ]
