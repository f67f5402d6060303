"""One asset per OneRoster collection, per tenant and night, with its quarantine check."""

import dagster as dg
import pandas as pd
import pyarrow as pa

from ...core.tenants import Tenant
from ...oneroster.collections import COLLECTIONS, Collection
from ...oneroster.descriptions import column_description
from ...oneroster.normalise import arrow_schema
from ...oneroster.reasons import markdown
from ...oneroster.schemas import referenced_collections
from ...oneroster.snapshot import STORED, Snapshot, SnapshotRequest, take_snapshot
from ..partitions import tenant_night
from ..resources import DataLake, TenantsResource
from ..selection import GATEWAY_SELECTION_TEXT
from ..steps import OWNERS, explained, held, metadata, observe, step_of

QUARANTINE_CHECK = "quarantine"
REPAIRS_CHECK = "repairs"


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


def quarantine_check(tenant: Tenant, snapshot: Snapshot, key: dg.AssetKey) -> dg.AssetCheckResult:
    quarantined, total = snapshot.quarantined_records, snapshot.records
    share = quarantined / total if total else 0.0
    limit = tenant.validation.max_quarantined_share
    severity = dg.AssetCheckSeverity.ERROR if share > limit else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=QUARANTINE_CHECK,
        passed=snapshot.quarantined == 0,  # a bad row of a side file warns as well
        severity=severity,
        metadata={
            "quarantined": quarantined,
            "quarantined_rows_of_other_files": snapshot.other_files,
            "records": total,
            "quarantined_share": round(share, 6),
            "max_quarantined_share": limit,
            **_grouped("top_reasons", snapshot.quarantine),
        },
        description=(
            f"{quarantined} of {total} records quarantined ({share:.2%}; limit {limit:.2%})"
            + (f", and {snapshot.other_files} rows of other files" if snapshot.other_files else "")
            if snapshot.quarantined
            else "every record valid"
        ),
    )


def _grouped(key: str, frame: pd.DataFrame | None) -> dict:
    return {} if frame is None or not len(frame) else {key: dg.MetadataValue.md(markdown(frame))}


def repairs_check(snapshot: Snapshot, key: dg.AssetKey) -> dg.AssetCheckResult:
    repaired = int(snapshot.figures.get("repaired", 0))  # type: ignore[arg-type]
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=REPAIRS_CHECK,
        passed=repaired == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"repaired": repaired, **_grouped("top_reasons", snapshot.repairs)},
        description=(
            f"{repaired} fields repaired in kept records (the SIS's values are in the repairs file)"
            if repaired
            else "no repair"
        ),
    )


def _description(collection: Collection, refs: list[str]) -> str:
    against = f"(against {', '.join(refs)}) " if refs else ""
    return (
        f"The validated OneRoster `{collection.endpoint}` snapshot of a tenant for a night. "
        f"Records that cannot be used (no sourcedId, a required field or reference missing {against}) "
        f"go to `quarantine/{collection.name}/<night>/<tenant>.parquet` with a reason; fields "
        "repaired in kept records (an optional field unreadable, an optional reference to no "
        f"record) go to `repairs/{collection.name}/<night>/<tenant>.parquet` with the SIS's value."
    )


def _as_fetched(context: dg.AssetExecutionContext, key: dg.AssetKey) -> dict:
    """The figures of the run that fetched the night's stored snapshot (pages, requests,
    retries, fetch time…), so a re-run that reuses it does not hide them."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[context.partition_key]), limit=20
    ).records
    for record in records:
        entries = record.asset_materialization.metadata if record.asset_materialization else {}
        origin = entries.get("origin")
        if origin is not None and origin.value != STORED:
            return {**entries, "fetched_in_run": dg.MetadataValue.dagster_run(record.run_id)}
    return {}


def build_collection_asset(collection: Collection) -> dg.AssetsDefinition:
    key = dg.AssetKey(["oneroster", collection.name])
    refs = sorted(referenced_collections(collection.name))
    ins = {
        ref: dg.AssetIn(key=["oneroster", ref], metadata={"columns": ["sourcedId"]}) for ref in refs
    }

    @dg.asset(
        key=key,
        ins=ins,
        partitions_def=tenant_night,
        group_name="oneroster",
        kinds={"pandas", "parquet"},
        owners=OWNERS,
        description=_description(collection, refs),
        metadata={"dagster/column_schema": column_schema(collection)},
        check_specs=[
            dg.AssetCheckSpec(
                QUARANTINE_CHECK,
                asset=key,
                blocking=True,
                partitions_def=tenant_night,  # each tenant-night has its own status
                description="WARN when records are quarantined; ERROR (blocking) above the tenant's max_quarantined_share",
            ),
            dg.AssetCheckSpec(
                REPAIRS_CHECK,
                asset=key,
                partitions_def=tenant_night,
                description="WARN when fields of kept records were repaired (an optional field unreadable, an optional reference to no record): counts per reason",
            ),
        ],
    )
    def _asset(
        context: dg.AssetExecutionContext,
        tenants: TenantsResource,
        lake: DataLake,
        **upstream: pd.DataFrame,
    ):
        step = step_of(context, tenants, lake)
        if step.tenant.gateway:
            raise dg.Failure(
                description=f"tenant {step.tenant_id!r} is a CSV Gateway tenant (canvas_csv): it has "
                f"no OneRoster collections; run its nights with sis-pipelines run --tenant "
                f"{step.tenant_id} (or the schedule), which select {GATEWAY_SELECTION_TEXT}",
                allow_retries=False,
            )
        request = SnapshotRequest(
            step.tenant_id, step.tenant, step.night, collection, step.flags.force_refetch
        )
        references = {ref: pa.array(upstream[ref]["sourcedId"]) for ref in refs}
        with explained(context, step.tenant), held(context, step):
            snapshot = take_snapshot(step.lake, step.services, request, references)
        for line in snapshot.notes:
            context.log.info(line)
        for line in snapshot.warnings:
            context.log.warning(line)
        figures = {"dagster/row_count": snapshot.stored.rows, **snapshot.figures}
        checks = [quarantine_check(step.tenant, snapshot, key), repairs_check(snapshot, key)]
        observe(context, step, figures, checks)
        yield dg.Output(
            snapshot.stored,
            metadata={
                **(_as_fetched(context, key) if figures.get("origin") == STORED else {}),
                **metadata(figures),
            },
        )
        yield from checks

    return _asset


oneroster_assets = [build_collection_asset(c) for c in COLLECTIONS.values()]
