"""The jobs: every asset of a tenant-night, and the Canvas re-derivation after a term change."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from ..executor import run_executor
from ..keys import DELTA, MAPPING
from ..partitions import tenant_night

nightly_job = dg.define_asset_job(
    "nightly",
    # The tenants' pages are observed by these steps, not materialized.
    selection=dg.AssetSelection.groups("oneroster", "canvas", "gpb"),
    partitions_def=tenant_night,
    executor_def=run_executor(),
    description="Every asset of one tenant for one night.",
)

# Re-derives Canvas from stored snapshots: never fetches from the SIS, never uploads.
term_change_job = dg.define_asset_job(
    "term_change_backfill",
    selection=dg.AssetSelection.assets(MAPPING, DELTA),
    partitions_def=tenant_night,
    executor_def=run_executor(),
    description="Canvas mapping and delta of a tenant re-derived from stored snapshots after a term change.",
)


def tenant_freshness_job(checks: dg.AssetChecksDefinition) -> UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        "tenant_freshness",
        selection=dg.AssetSelection.checks(checks),
        executor_def=dg.in_process_executor,
        description="Each tenant's night_arrived check: whether its nights keep arriving.",
    )
