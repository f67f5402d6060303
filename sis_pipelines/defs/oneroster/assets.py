"""One asset per OneRoster collection, per tenant and night, with its quarantine and repairs
checks."""

import dagster as dg
import pandas as pd
import pyarrow as pa

from ...oneroster.collections import COLLECTIONS, Collection
from ...oneroster.descriptions import column_description
from ...oneroster.normalise import arrow_schema
from ...oneroster.schemas import referenced_collections
from ...oneroster.snapshot import (
    QUARANTINE_CHECK,
    REPAIRS_CHECK,
    STORED,
    SnapshotRequest,
    take_snapshot,
)
from ..keys import oneroster
from ..selection import GATEWAY_SELECTION_TEXT
from ..steps import Made, Step, check_spec, tenant_night_asset


def column_schema(collection: Collection) -> dg.TableSchema:
    """The snapshot's columns, their Arrow types and what OneRoster says each holds."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field.name,
                type=str(field.type),
                description=column_description(collection.name, field.name),
            )
            for field in arrow_schema(collection)
        ]
    )


def _as_fetched(context: dg.AssetExecutionContext) -> dict:
    """The figures of the run that fetched the night's stored snapshot (pages, requests,
    retries, fetch time…), so a re-run that reuses it does not hide them."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=context.asset_key, asset_partitions=[context.partition_key]
        ),
        limit=20,
    ).records
    for record in records:
        entries = record.asset_materialization.metadata if record.asset_materialization else {}
        origin = entries.get("origin")
        if origin is not None and origin.value != STORED:
            return {**entries, "fetched_in_run": dg.MetadataValue.dagster_run(record.run_id)}
    return {}


def build_collection_asset(collection: Collection) -> dg.AssetsDefinition:
    key = oneroster(collection.name)
    refs = sorted(referenced_collections(collection.name))
    against = f"(against {', '.join(refs)}) " if refs else ""

    @tenant_night_asset(
        key,
        group="oneroster",
        kinds={"pandas", "parquet"},
        ins={
            ref: dg.AssetIn(key=oneroster(ref), metadata={"columns": ["sourcedId"]}) for ref in refs
        },
        stored=True,
        retry_sis=True,
        metadata={"dagster/column_schema": column_schema(collection)},
        description=(
            f"The validated OneRoster `{collection.endpoint}` snapshot of a tenant for a night. "
            f"Records that cannot be used (no sourcedId, a required field or reference missing "
            f"{against}) go to `quarantine/{collection.name}/<night>/<tenant>.parquet` with a "
            "reason; fields repaired in kept records (an optional field unreadable, an optional "
            f"reference to no record) go to `repairs/{collection.name}/<night>/<tenant>.parquet` "
            "with the SIS's value."
        ),
        checks=[
            check_spec(
                QUARANTINE_CHECK,
                key,
                "WARN when records are quarantined; ERROR (blocking) above the tenant's "
                "max_quarantined_share; the counts are on the tenant's page",
                blocking=True,
            ),
            check_spec(
                REPAIRS_CHECK,
                key,
                "WARN when fields of kept records were repaired (an optional field unreadable, "
                "an optional reference to no record), with the reasons",
            ),
        ],
    )
    def _snapshot(context: dg.AssetExecutionContext, step: Step, **upstream: pd.DataFrame) -> Made:
        if step.tenant.gateway:
            raise dg.Failure(
                description=f"tenant {step.tenant_id!r} is a CSV Gateway tenant (canvas_csv): it "
                f"has no OneRoster collections; run its nights with sis-pipelines run --tenant "
                f"{step.tenant_id} (or the schedule), which select {GATEWAY_SELECTION_TEXT}",
                allow_retries=False,
            )
        request = SnapshotRequest(step.tn, collection, step.flags.force_refetch)
        references = {ref: pa.array(upstream[ref]["sourcedId"]) for ref in refs}
        snapshot = take_snapshot(step.lake, step.services, request, references)
        for line in snapshot.notes:
            context.log.info(line)
        for line in snapshot.warnings:
            context.log.warning(line)
        figures = {"dagster/row_count": snapshot.stored.rows, **snapshot.figures}
        return Made(
            figures,
            snapshot.checks(step.tenant.validation.max_quarantined_share),
            snapshot.stored,
            _as_fetched(context) if figures.get("origin") == STORED else {},
        )

    return _snapshot


oneroster_assets = [build_collection_asset(c) for c in COLLECTIONS.values()]
