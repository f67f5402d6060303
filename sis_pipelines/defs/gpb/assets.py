"""Grade passback assets: the Canvas gradebook snapshot, the OneRoster payloads, the push."""

import dagster as dg
import pandas as pd

from ...gpb.passback import compute_payloads, passes_back, push_night, read_canvas_gradebook
from ..canvas.assets import MAPPING, SIS_IMPORT
from ..partitions import tenant_night
from ..resources import DataLake, TenantsResource
from ..steps import OWNERS, Step, explained, metadata, observe, step_for

GRADEBOOK = dg.AssetKey(["gpb", "canvas_gradebook"])
PAYLOADS = dg.AssetKey(["gpb", "payloads"])
PUSH = dg.AssetKey(["gpb", "push"])


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
        "The Canvas gradebook of every course this pipeline provisioned: assignments, students "
        "(with course grades) and the submissions graded since the last complete pass."
    ),
)
def canvas_gradebook(context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake):
    step = _passing_back(context, tenants, lake)
    if step is None:
        return
    with explained():
        figures = read_canvas_gradebook(
            step.lake, step.services, step.tenant_id, step.tenant, step.night
        )
    yield dg.MaterializeResult(metadata=metadata(figures))


@dg.asset(
    key=PAYLOADS,
    deps=[GRADEBOOK],
    ins={
        "classes": dg.AssetIn(key=["oneroster", "classes"]),
        "academic_sessions": dg.AssetIn(key=["oneroster", "academic_sessions"]),
    },
    partitions_def=tenant_night,
    group_name="gpb",
    output_required=False,
    kinds={"oneroster"},
    owners=OWNERS,
    description=(
        "The night's OneRoster gradebook requests (categories, lineItems, results) in send order, "
        "in `gpb/requests/<night>/<tenant>.jsonl`; what cannot be sent is in `gpb/report/<night>/<tenant>.parquet`."
    ),
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
    with explained():
        figures = compute_payloads(
            step.lake,
            step.services,
            step.tenant_id,
            step.tenant,
            step.night,
            classes,
            academic_sessions,
        )
    yield dg.MaterializeResult(metadata=metadata(figures))


@dg.asset(
    key=PUSH,
    deps=[PAYLOADS],
    partitions_def=tenant_night,
    group_name="gpb",
    output_required=False,
    kinds={"oneroster"},
    owners=OWNERS,
    description=(
        "Sends the night's requests to the SIS gradebook: lineItems before their results, bounded, "
        "idempotent; never over a grade the SIS changed unless the tenant says so; backfills only when forced. "
        "Outcomes in `gpb/outcomes/<night>/<tenant>.parquet`."
    ),
)
def gpb_push(context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake):
    step = _passing_back(context, tenants, lake)
    if step is None:
        return
    with explained(context, observed=step):
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
