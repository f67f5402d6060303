"""The jobs: every asset of a tenant-night, and the Canvas re-derivation after a term change."""

import dagster as dg

from ..canvas.assets import DELTA, MAPPING
from ..partitions import tenant_night

nightly_job = dg.define_asset_job(
    "nightly",
    selection=dg.AssetSelection.all(),
    partitions_def=tenant_night,
    # One process per tenant-night: steps are short and a subprocess per step costs seconds.
    executor_def=dg.in_process_executor,
    description="Every asset of one tenant for one night.",
)

# Re-derives Canvas from stored snapshots: never fetches from the SIS, never uploads.
term_change_job = dg.define_asset_job(
    "term_change_backfill",
    selection=dg.AssetSelection.assets(MAPPING, DELTA),
    partitions_def=tenant_night,
    executor_def=dg.in_process_executor,
    description="Canvas mapping and delta of a tenant re-derived from stored snapshots after a term change.",
)
