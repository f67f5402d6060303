"""Canvas provisioning assets: mapping, guarded delta and package, upload and tracking."""

import dagster as dg

from ...canvas.gateway import gateway_night
from ...canvas.mapping import MAPPED_COLUMNS
from ...canvas.provision import GUARD_CHECK, delta_night, import_night, map_night
from ...core.memory import release_memory
from ...core.tags import ALLOW_MASS_REMOVAL
from ..keys import DELTA, DROP, MAPPING, SIS_IMPORT, oneroster
from ..partitions import tenant_night
from ..steps import OWNERS, Made, Step, check_spec, tenant_night_asset

PROVISIONED = (lambda tenant: tenant.canvas is not None, "no canvas section: Canvas skipped")

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


@tenant_night_asset(
    MAPPING,
    group="canvas",
    kinds={"pandas", "parquet", "canvas"},
    applies=PROVISIONED,
    # Read in the step (OneRoster tenants) or replaced by the drop (CSV Gateway tenants).
    deps=[*map(oneroster, MAPPED_COLUMNS), DROP],
    description=(
        "The full Canvas state a night implies: accounts, terms, courses, sections, users, "
        "enrollments (and observers), with prefixed SIS ids; mapped from the night's OneRoster "
        "snapshot, or, for a CSV Gateway tenant (canvas_csv), its drop's usable rows."
    ),
)
def canvas_mapping(context: dg.AssetExecutionContext, step: Step) -> Made:
    assert step.tenant.canvas is not None
    if not step.tenant.gateway:
        figures = map_night(step.lake, step.tn)
        release_memory()  # written: the delta step that follows starts without them
        return Made(figures)
    figures = gateway_night(step.lake, step.services, step.tn)
    # Lineage: the drop the rows came from, observed for this tenant-night.
    observed = {k: figures[k] for k in ("drop", "drop_sha256")}
    context.log_event(
        dg.AssetObservation(asset_key=DROP, partition=context.partition_key, metadata=observed)
    )
    if figures["rejected_rows"]:
        context.log.warning(
            f"tenant {step.tenant_id!r}, night {step.night}: {figures['rejected_rows']} rows "
            "of the drop rejected (file, line, column, reason in the metadata and in "
            f"quarantine/canvas_csv/{step.night}/{step.tenant_id}.parquet)"
        )
    return Made(figures)


@tenant_night_asset(
    DELTA,
    group="canvas",
    kinds={"pandas", "canvas"},
    applies=PROVISIONED,
    deps=[MAPPING],
    description=(
        "Tonight's Canvas SIS Import delta against the last night applied to Canvas, every row "
        "explained in `canvas/changes/<night>/<tenant>.parquet`, packaged as "
        "`canvas/sis_import/<night>/<tenant>.zip` when the deletion guard passes."
    ),
    checks=[
        check_spec(
            GUARD_CHECK,
            DELTA,
            "Blocks the upload when a night would destroy work (deletions, conclusions before a "
            "term's end, enrollments ended mid-term) beyond the tenant's max_removal_share",
            blocking=True,
        )
    ],
)
def canvas_delta(context: dg.AssetExecutionContext, step: Step) -> Made:
    assert step.tenant.canvas is not None
    allow = step.flags.allow_mass_removal
    figures, verdict = delta_night(step.lake, step.tn, allow)
    if verdict.overridden:
        context.log.warning(
            f"tenant {step.tenant_id!r}, night {step.night}: mass removal allowed by the "
            f"{ALLOW_MASS_REMOVAL} tag of run {context.run_id}"
        )
    evaluation = step.tn.files(step.lake).evaluation_report()
    return Made(figures, [verdict.check(evaluation if evaluation.exists() else None)])


@tenant_night_asset(
    SIS_IMPORT,
    group="canvas",
    kinds={"canvas"},
    applies=PROVISIONED,
    deps=[DELTA],
    description="Posts the night's zip to Canvas sis_imports and follows it to a terminal state; "
    "idempotent per night.",
)
def canvas_sis_import(context: dg.AssetExecutionContext, step: Step) -> Made:
    force = step.flags.force_upload
    return Made(import_night(step.lake, step.services, step.tn, force))


canvas_assets = [canvas_mapping, canvas_delta, canvas_sis_import, drop]
