"""Canvas provisioning assets: mapping, guarded delta and package, upload and tracking."""

import dagster as dg
from upath import UPath

from ...canvas.gateway import gateway_night
from ...canvas.mapping import MAPPED_COLUMNS
from ...canvas.provision import GuardVerdict, delta_night, import_night, map_night
from ...core.memory import release_memory
from ..partitions import tenant_night
from ..resources import DataLake, TenantsResource
from ..steps import OWNERS, Step, explained, held, metadata, observe, step_for
from ..tags import ALLOW_MASS_REMOVAL

GUARD_CHECK = "deletion_guard"
MAPPING = dg.AssetKey(["canvas", "mapping"])
DROP = dg.AssetKey(["canvas_csv", "drop"])
DELTA = dg.AssetKey(["canvas", "delta"])
SIS_IMPORT = dg.AssetKey(["canvas", "sis_import"])


def _provisioned(
    context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake
) -> Step | None:
    return step_for(
        context,
        tenants,
        lake,
        lambda tenant: tenant.canvas is not None,
        "no canvas section: Canvas provisioning skipped",
    )


# A CSV Gateway tenant's nightly Canvas-format drop: outside Dagster, observed by canvas/mapping.
drop = dg.AssetSpec(
    DROP,
    group_name="canvas_csv",
    partitions_def=tenant_night,
    kinds={"csv"},
    owners=OWNERS,
    description=(
        "A CSV Gateway tenant's nightly drop of Canvas-format SIS CSV files (a zip or a folder, "
        "locally or on SFTP): canvas/mapping reads it, observes it here (the file and its "
        "digest) and keeps its rejected rows in `quarantine/canvas_csv/<night>/<tenant>.parquet`."
    ),
)


@dg.asset(
    key=MAPPING,
    # Read in the step (OneRoster tenants) or replaced by the drop (CSV Gateway tenants).
    deps=[*(dg.AssetKey(["oneroster", name]) for name in MAPPED_COLUMNS), DROP],
    partitions_def=tenant_night,
    group_name="canvas",
    output_required=False,  # skipped for tenants without a canvas section
    kinds={"pandas", "parquet", "canvas"},
    owners=OWNERS,
    description=(
        "The full Canvas state a night implies: accounts, terms, courses, sections, users, "
        "enrollments (and observers), with prefixed SIS ids; mapped from the night's OneRoster "
        "snapshot, or, for a CSV Gateway tenant (canvas_csv), its drop's usable rows."
    ),
)
def canvas_mapping(context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake):
    step = _provisioned(context, tenants, lake)
    if step is None:
        return
    assert step.tenant.canvas is not None
    with explained(), held(context, step):
        if step.tenant.gateway:
            figures = gateway_night(
                step.lake, step.services, step.tenant_id, step.tenant, step.night
            )
        else:
            figures = map_night(step.lake, step.tenant_id, step.tenant.canvas, step.night)
    release_memory()  # written: the delta step that follows starts without them
    if step.tenant.gateway:
        # Lineage: the drop the rows came from, observed for this tenant-night.
        context.log_event(
            dg.AssetObservation(
                asset_key=DROP,
                partition=context.partition_key,
                metadata={k: figures[k] for k in ("drop", "drop_sha256")},
            )
        )
        if figures["rejected_rows"]:
            context.log.warning(
                f"tenant {step.tenant_id!r}, night {step.night}: {figures['rejected_rows']} rows "
                "of the drop rejected (file, line, column, reason in the metadata and in "
                f"quarantine/canvas_csv/{step.night}/{step.tenant_id}.parquet)"
            )
    observe(context, step, figures)
    yield dg.MaterializeResult(metadata=metadata(figures))


def _guard_check(verdict: GuardVerdict, run_id: str, evaluation: UPath) -> dg.AssetCheckResult:
    if verdict.passed:
        description = "within the limit"
    elif verdict.overridden:
        description = f"over the limit, allowed on purpose by run {run_id} ({ALLOW_MASS_REMOVAL})"
    else:
        description = (
            f"over the limit ({verdict.summary}): nothing will be uploaded. Check the "
            f"changes; re-run with the tag {ALLOW_MASS_REMOVAL}=true (or "
            "--allow-mass-removal) to let them through."
        )
    return dg.AssetCheckResult(
        check_name=GUARD_CHECK,
        passed=verdict.lets_through,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "what_would_be_removed": dg.MetadataValue.md(verdict.table),
            "overridden": verdict.overridden,
            **verdict.shares(),
            # The tenant's evaluation of the night (sis-pipelines evaluate), when there is one.
            **(
                {"evaluation": dg.MetadataValue.path(str(evaluation))}
                if evaluation.exists()
                else {}
            ),
        },
    )


@dg.asset(
    key=DELTA,
    deps=[MAPPING],
    partitions_def=tenant_night,
    group_name="canvas",
    output_required=False,  # skipped for tenants without a canvas section
    kinds={"pandas", "canvas"},
    owners=OWNERS,
    description=(
        "Tonight's Canvas SIS Import delta against the last night applied to Canvas, every row explained in "
        "`canvas/changes/<night>/<tenant>.parquet`, packaged as `canvas/sis_import/<night>/<tenant>.zip` when the deletion guard passes."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            GUARD_CHECK,
            asset=DELTA,
            blocking=True,
            partitions_def=tenant_night,  # each tenant-night has its own status
            description="Blocks the upload when a night would remove more than the tenant's max_removal_share of active users, courses, sections or enrollments",
        )
    ],
)
def canvas_delta(context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake):
    step = _provisioned(context, tenants, lake)
    if step is None:
        return
    assert step.tenant.canvas is not None
    with explained(), held(context, step):
        figures, verdict = delta_night(
            step.lake,
            step.tenant_id,
            step.tenant.canvas,
            step.night,
            step.flags.allow_mass_removal,
        )
    if verdict.overridden:
        context.log.warning(
            f"tenant {step.tenant_id!r}, night {step.night}: mass removal allowed by the {ALLOW_MASS_REMOVAL} tag of run {context.run_id}"
        )
    guard = _guard_check(
        verdict, context.run_id, step.lake.evaluation_report(step.night, step.tenant_id)
    )
    observe(context, step, figures, [guard])
    yield dg.MaterializeResult(metadata=metadata(figures), check_results=[guard])


@dg.asset(
    key=SIS_IMPORT,
    deps=[DELTA],
    partitions_def=tenant_night,
    group_name="canvas",
    output_required=False,  # skipped for tenants without a canvas section
    kinds={"canvas"},
    owners=OWNERS,
    description="Posts the night's zip to Canvas sis_imports and follows it to a terminal state; idempotent per night.",
)
def canvas_sis_import(context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake):
    step = _provisioned(context, tenants, lake)
    if step is None:
        return
    with explained(), held(context, step):
        figures = import_night(
            step.lake,
            step.services,
            step.tenant_id,
            step.tenant,
            step.night,
            step.flags.force_upload,
        )
    yield dg.MaterializeResult(metadata=metadata(figures))


canvas_assets = [canvas_mapping, canvas_delta, canvas_sis_import, drop]
