"""Grade passback assets: the Canvas gradebook snapshot, the OneRoster payloads, the push."""

import dagster as dg
import pandas as pd

from ...gpb.passback import (
    Plan,
    compute_payloads,
    passes_back,
    push_night,
    read_canvas_gradebook,
)
from ...gpb.payloads import CLASS_COLUMNS
from ..canvas.assets import MAPPING, SIS_IMPORT
from ..partitions import tenant_night
from ..resources import DataLake, TenantsResource
from ..steps import OWNERS, Step, explained, held, metadata, observe, step_for
from ..tags import ALLOW_MASS_REMOVAL

GRADEBOOK = dg.AssetKey(["gpb", "canvas_gradebook"])
PAYLOADS = dg.AssetKey(["gpb", "payloads"])
PUSH = dg.AssetKey(["gpb", "push"])
REMOVAL_GUARD = "removal_guard"


def _passing_back(
    context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake
) -> Step | None:
    return step_for(context, tenants, lake, passes_back, "grade passback is off")


@dg.asset(
    key=GRADEBOOK,
    deps=[SIS_IMPORT, MAPPING],
    partitions_def=tenant_night,
    group_name="gpb",
    output_required=False,  # skipped for tenants without grade passback
    kinds={"canvas", "parquet"},
    owners=OWNERS,
    description=(
        "The whole Canvas gradebook of every course this pipeline provisioned: assignments, "
        "students (with course grades) and every submission."
    ),
)
def canvas_gradebook(context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake):
    step = _passing_back(context, tenants, lake)
    if step is None:
        return
    with explained(), held(context, step):
        figures = read_canvas_gradebook(
            step.lake, step.services, step.tenant_id, step.tenant, step.night
        )
    yield dg.MaterializeResult(metadata=metadata(figures))


@dg.asset(
    key=PAYLOADS,
    deps=[GRADEBOOK],
    ins={
        "classes": dg.AssetIn(key=["oneroster", "classes"], metadata={"columns": CLASS_COLUMNS}),
        "academic_sessions": dg.AssetIn(key=["oneroster", "academic_sessions"]),
    },
    partitions_def=tenant_night,
    group_name="gpb",
    output_required=False,
    kinds={"oneroster"},
    owners=OWNERS,
    description=(
        "The night's OneRoster gradebook requests (categories, lineItems, results) in send order, "
        "and the removals of ours the gradebook no longer implies, "
        "in `gpb/requests/<night>/<tenant>.jsonl`; what cannot be sent is in `gpb/report/<night>/<tenant>.parquet`."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            REMOVAL_GUARD,
            asset=PAYLOADS,
            blocking=True,
            partitions_def=tenant_night,
            description="Stops the push when a night would remove more than the tenant's gpb.max_removal_share of our lineItems or results",
        )
    ],
)
def gpb_payloads(
    context: dg.AssetExecutionContext,
    tenants: TenantsResource,
    lake: DataLake,
    classes: pd.DataFrame,
    academic_sessions: pd.DataFrame,
):
    step = _passing_back(context, tenants, lake)
    if step is None:
        return
    with explained(), held(context, step):
        figures, plan = compute_payloads(
            step.lake,
            step.services,
            step.tenant_id,
            step.tenant,
            step.night,
            classes,
            academic_sessions,
            step.flags.allow_mass_removal,
        )
    guard = removal_guard(plan, context.run_id)
    yield dg.MaterializeResult(metadata=metadata(figures), check_results=[guard])


def removal_guard(plan: Plan, run_id: str) -> dg.AssetCheckResult:
    if plan.guard_passed:
        description = "within the limit"
    elif plan.overridden:
        description = f"over the limit, allowed on purpose by run {run_id} ({ALLOW_MASS_REMOVAL})"
    else:
        description = (
            "over the limit: nothing will be pushed. Re-run with the tag "
            f"{ALLOW_MASS_REMOVAL}=true (or --allow-mass-removal) to let it through."
        )
    return dg.AssetCheckResult(
        check_name=REMOVAL_GUARD,
        passed=plan.guard_passed or plan.overridden,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "what_would_be_removed": dg.MetadataValue.md(plan.removals.table()),
            "overridden": plan.overridden,
            **plan.removals.figures(),
        },
    )


@dg.asset(
    key=PUSH,
    deps=[PAYLOADS],
    partitions_def=tenant_night,
    group_name="gpb",
    output_required=False,
    kinds={"oneroster"},
    owners=OWNERS,
    description=(
        "Sends the night's requests to the SIS gradebook: lineItems before their results, then the "
        "removals (results before their lineItems; DELETE or PUT tobedeleted), bounded, idempotent; "
        "never over a grade the SIS changed unless the tenant says so, never removing one; "
        "backfills only when forced. "
        "Outcomes in `gpb/outcomes/<night>/<tenant>.parquet`."
    ),
)
def gpb_push(context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake):
    step = _passing_back(context, tenants, lake)
    if step is None:
        return
    with explained(context, observed=step), held(context, step):
        figures = push_night(
            step.lake,
            step.services,
            step.tenant_id,
            step.tenant,
            step.night,
            force=step.flags.force_push,
            backfill=step.flags.backfill,
        )
    observe(context, step, figures)
    yield dg.MaterializeResult(metadata=metadata(figures))


gpb_assets = [canvas_gradebook, gpb_payloads, gpb_push]
