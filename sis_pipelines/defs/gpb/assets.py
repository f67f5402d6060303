"""Grade passback assets: the Canvas gradebook snapshot, the OneRoster payloads, the push."""

import dagster as dg
import pandas as pd

from ...gpb.passback import (
    REMOVAL_GUARD,
    compute_payloads,
    passes_back,
    push_night,
    read_canvas_gradebook,
)
from ...gpb.payloads import CLASS_COLUMNS
from ..keys import GRADEBOOK, MAPPING, PAYLOADS, PUSH, SIS_IMPORT, oneroster
from ..steps import Made, Step, check_spec, tenant_night_asset

PASSING_BACK = (passes_back, "grade passback is off")


@tenant_night_asset(
    GRADEBOOK,
    group="gpb",
    kinds={"canvas", "parquet"},
    applies=PASSING_BACK,
    deps=[SIS_IMPORT, MAPPING],
    description="The whole Canvas gradebook of every course this pipeline provisioned: "
    "assignments, students (with course grades) and every submission.",
)
def canvas_gradebook(context: dg.AssetExecutionContext, step: Step) -> Made:
    return Made(read_canvas_gradebook(step.lake, step.services, step.tn))


@tenant_night_asset(
    PAYLOADS,
    group="gpb",
    kinds={"oneroster"},
    applies=PASSING_BACK,
    deps=[GRADEBOOK],
    ins={
        "classes": dg.AssetIn(key=oneroster("classes"), metadata={"columns": CLASS_COLUMNS}),
        "academic_sessions": dg.AssetIn(key=oneroster("academic_sessions")),
    },
    description=(
        "The night's OneRoster gradebook requests (categories, lineItems, results) in send "
        "order, and the removals of ours the gradebook no longer implies, in "
        "`gpb/requests/<night>/<tenant>.jsonl`; what cannot be sent is in "
        "`gpb/report/<night>/<tenant>.parquet`."
    ),
    checks=[
        check_spec(
            REMOVAL_GUARD,
            PAYLOADS,
            "Stops the push when a night would remove more than the tenant's "
            "gpb.max_removal_share of our lineItems or results",
            blocking=True,
        )
    ],
)
def gpb_payloads(
    context: dg.AssetExecutionContext,
    step: Step,
    classes: pd.DataFrame,
    academic_sessions: pd.DataFrame,
) -> Made:
    figures, plan = compute_payloads(
        step.lake,
        step.services,
        step.tn,
        classes,
        academic_sessions,
        step.flags.allow_mass_removal,
    )
    return Made(figures, [plan.check()])


@tenant_night_asset(
    PUSH,
    group="gpb",
    kinds={"oneroster"},
    applies=PASSING_BACK,
    deps=[PAYLOADS],
    description=(
        "Sends the night's requests to the SIS gradebook: lineItems before their results, then "
        "the removals (results before their lineItems; DELETE or PUT tobedeleted), bounded, "
        "idempotent; never over a grade the SIS changed unless the tenant says so, never "
        "removing one; backfills only when forced. Outcomes in "
        "`gpb/outcomes/<night>/<tenant>.parquet`."
    ),
)
def gpb_push(context: dg.AssetExecutionContext, step: Step) -> Made:
    return Made(
        push_night(
            step.lake,
            step.services,
            step.tn,
            force=step.flags.force_push,
            backfill=step.flags.backfill,
        )
    )


gpb_assets = [canvas_gradebook, gpb_payloads, gpb_push]
