"""One asset per OneRoster collection, per tenant and night, with its quarantine check."""

import os
import time
from datetime import date

import dagster as dg
import pandas as pd
import pyarrow as pa

from ..nights import is_past
from ..oneroster.client import FetchResult
from ..oneroster.collections import COLLECTIONS, Collection
from ..oneroster.csv_bundle import FILE_NAMES, BundleError, CsvRead, line_of, read_collection
from ..oneroster.csv_source import Located, locate
from ..oneroster.errors import OneRosterError
from ..oneroster.normalise import Rejects, arrow_schema
from ..oneroster.privacy import contact_hook
from ..oneroster.schemas import referenced_collections
from ..oneroster.source import MissingSecretError, open_rostering
from ..oneroster.validate import Validated, validate
from ..storage import data_dir, parquet_rows, read_frame, stored_nights, write_frame
from ..tenants import Tenant
from .partitions import tenant_and_night, tenant_night
from .resources import DataLake, TenantsResource

FORCE_REFETCH_TAG = "sis_pipelines/force_refetch"
QUARANTINE_CHECK = "quarantine"


def _column_schema(frame: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name=str(c), type=str(t)) for c, t in frame.dtypes.items()]
    )


_BUNDLES: dict[tuple[str, str, date], Located] = {}


def _bundle(tenant_id: str, tenant: Tenant, night: date) -> Located:
    # The collections of a run read one bundle: fetch (or download) it once per process.
    key = (tenant_id, tenant.oneroster.path or "", night)
    if key not in _BUNDLES:
        if len(_BUNDLES) >= 4:
            _BUNDLES.pop(next(iter(_BUNDLES)))
        _BUNDLES[key] = locate(tenant_id, tenant.oneroster, night)
    return _BUNDLES[key]


def _read_csv(
    tenant_id: str, tenant: Tenant, night: date, collection: Collection, lake: DataLake
) -> tuple[CsvRead, Located]:
    try:
        located = _bundle(tenant_id, tenant, night)
    except BundleError as exc:
        raise dg.Failure(
            description=f"tenant {tenant_id!r}, {collection.name}, night {night}: {exc}",
            allow_retries=False,
        ) from None
    previous = None
    earlier = [
        n
        for n in stored_nights(lake.root or data_dir(), "oneroster", collection.name, tenant_id)
        if n < str(night)
    ]
    if earlier and located.bundle.mode(collection.name) in ("delta", "absent"):
        frame = read_frame(lake.path("oneroster", collection.name, earlier[-1], tenant_id))
        previous = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    hook = _privacy_hook(tenant_id, tenant, collection)
    return read_collection(located.bundle, collection, previous, hook), located


def _privacy_hook(tenant_id: str, tenant: Tenant, collection: Collection):
    """The tenant's data minimisation for this collection's raw records, if any."""
    if collection.name != "users":
        return None
    privacy = tenant.privacy
    salt = os.environ.get(privacy.hash_salt_env or "") if privacy.contact_fields == "hash" else None
    if privacy.contact_fields == "hash" and not salt:
        raise dg.Failure(
            description=f"tenant {tenant_id!r}: environment variable {privacy.hash_salt_env} (privacy.hash_salt_env) is not set",
            allow_retries=False,
        )
    return contact_hook(privacy.contact_fields, salt)


def _fetch(
    context: dg.AssetExecutionContext,
    tenant_id: str,
    tenant: Tenant,
    night: date,
    collection: Collection,
) -> FetchResult:
    try:
        with open_rostering(tenant_id, tenant, night) as client:
            return client.fetch(collection, _privacy_hook(tenant_id, tenant, collection))
    except OneRosterError as exc:
        # The client already retried within seconds; a SIS that stays down gets a few more
        # chances minutes apart. Only this tenant's run waits: other tenants run apart.
        retries = tenant.oneroster.step_retries
        if exc.transient and context.retry_number < retries:
            context.log.warning(
                f"{exc}; retrying the step in {tenant.oneroster.step_retry_wait_s:.0f}s"
            )
            raise dg.RetryRequested(
                max_retries=retries, seconds_to_wait=tenant.oneroster.step_retry_wait_s
            ) from None
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    except (MissingSecretError, NotImplementedError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


def _check(
    tenant: Tenant, quarantined: int, total: int, asset_key: dg.AssetKey
) -> dg.AssetCheckResult:
    share = quarantined / total if total else 0.0
    limit = tenant.validation.max_quarantined_share
    severity = dg.AssetCheckSeverity.ERROR if share > limit else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=QUARANTINE_CHECK,
        passed=quarantined == 0,
        severity=severity,
        metadata={
            "quarantined": quarantined,
            "records": total,
            "quarantined_share": round(share, 6),
            "max_quarantined_share": limit,
        },
        description=(
            f"{quarantined} of {total} records quarantined ({share:.2%}; limit {limit:.2%})"
            if quarantined
            else "every record valid"
        ),
    )


def build_collection_asset(collection: Collection) -> dg.AssetsDefinition:
    name = collection.name
    key = dg.AssetKey(["oneroster", name])
    refs = sorted(referenced_collections(name))
    ins = {
        ref: dg.AssetIn(key=["oneroster", ref], metadata={"columns": ["sourcedId"]}) for ref in refs
    }

    @dg.asset(
        key=key,
        ins=ins,
        partitions_def=tenant_night,
        group_name="oneroster",
        kinds={"pandas", "parquet"},
        owners=["team:data-engineering"],
        description=(
            f"The validated OneRoster `{collection.endpoint}` snapshot of a tenant for a night. "
            "Records failing the schema or referential integrity "
            + (f"(against {', '.join(refs)}) " if refs else "")
            + "go to quarantine/{name}/<night>/<tenant>.parquet with a reason."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                QUARANTINE_CHECK,
                asset=key,
                blocking=True,
                description="WARN when records are quarantined; ERROR (blocking) above the tenant's max_quarantined_share",
            )
        ],
    )
    def _asset(
        context: dg.AssetExecutionContext,
        tenants: TenantsResource,
        lake: DataLake,
        **upstream: pd.DataFrame,
    ):
        tenant_id, night = tenant_and_night(context)
        tenant = tenants.tenant(tenant_id)
        night_s = night.isoformat()
        snapshot_path = lake.path("oneroster", name, night_s, tenant_id)
        quarantine_path = lake.path("quarantine", name, night_s, tenant_id)
        force = context.run.tags.get(FORCE_REFETCH_TAG, "").lower() == "true"
        if name == "demographics" and not tenant.privacy.demographics:
            # Left out on purpose: never fetched, an empty snapshot keeps lineage whole.
            empty = arrow_schema(collection).empty_table().to_pandas(types_mapper=pd.ArrowDtype)
            write_frame(Rejects().to_table().to_pandas(types_mapper=pd.ArrowDtype), quarantine_path)
            yield dg.Output(
                empty,
                metadata={
                    "dagster/row_count": 0,
                    "origin": "left out (privacy.demographics: false)",
                },
            )
            yield _check(tenant, 0, 0, key)
            return
        if snapshot_path.exists() and not force:
            # A night is immutable: its stored snapshot is the truth about that night.
            frame = read_frame(snapshot_path)
            quarantined = parquet_rows(quarantine_path) if quarantine_path.exists() else 0
            context.log.info(f"{tenant_id} {name} {night_s}: reusing the stored snapshot")
            yield dg.Output(
                frame,
                metadata={
                    "dagster/row_count": len(frame),
                    "quarantined": quarantined,
                    "origin": "stored snapshot",
                    "oneroster_version": tenant.oneroster.version,
                },
            )
            yield _check(tenant, quarantined, len(frame) + quarantined, key)
            return
        if tenant.oneroster.source == "rest" and is_past(night) and not force:
            raise dg.Failure(
                description=(
                    f"tenant {tenant_id!r}, {name}, night {night_s}: no stored snapshot, and the SIS serves only "
                    "its present state. Re-run with --force-refetch to store today's data as that night (recorded)."
                ),
                allow_retries=False,
            )
        started = time.monotonic()
        located = None
        if tenant.oneroster.source == "csv":
            fetched, located = _read_csv(tenant_id, tenant, night, collection, lake)
        else:
            fetched = _fetch(context, tenant_id, tenant, night, collection)
        fetch_s = time.monotonic() - started
        references = {ref: pa.array(upstream[ref]["sourcedId"]) for ref in refs}
        try:
            result: Validated = validate(collection, fetched.table, references, fetched.rejects)
        except ValueError as exc:
            raise dg.Failure(
                description=f"tenant {tenant_id!r}: {exc}", allow_retries=False
            ) from None
        if located is not None and len(result.quarantine):
            result.quarantine = _with_lines(result.quarantine, located.bundle, collection.name)
        write_frame(result.quarantine, quarantine_path)
        stats = fetched.stats
        quarantined = len(result.quarantine)
        if quarantined:
            sample = result.quarantine.head(5)
            for sid, reason in zip(sample["sourcedId"], sample["reason"], strict=True):
                context.log.warning(f"tenant {tenant_id!r}, {name}, record {sid}: {reason}")
        metadata: dict[str, object] = {
            "dagster/row_count": len(result.frame),
            "dagster/column_schema": _column_schema(result.frame),
            "quarantined": quarantined,
            "quarantine_file": dg.MetadataValue.path(str(quarantine_path)),
            "origin": "simulator" if tenant.oneroster.source == "simulator" else "sis",
            "oneroster_version": tenant.oneroster.version,
            "endpoint": stats.endpoint,
            "pages": stats.pages,
            "requests": stats.requests,
            "retries": stats.retries,
            "duplicates_dropped": stats.duplicates,
            "page_size_requested": stats.page_size_requested,
            "page_size_served": stats.page_size_served or stats.page_size_requested,
            "sorted_by_server": stats.sorted_by_server,
            "drift_rewinds": stats.drift_rewinds,
            "fetch_seconds": round(fetch_s, 3),
            "fetched_at": dg.MetadataValue.timestamp(time.time()),
            "refetch_forced": force,
        }
        if located is not None and isinstance(fetched, CsvRead):
            metadata["origin"] = "csv bundle"
            metadata["bundle"] = located.name
            metadata["bundle_sha256"] = located.sha256
            metadata["csv_mode"] = fetched.mode
            for filename, rows in fetched.rows_in_files.items():
                metadata[f"rows_in_{filename}"] = rows
            for rest_only in (
                "pages",
                "requests",
                "page_size_requested",
                "page_size_served",
                "sorted_by_server",
                "drift_rewinds",
                "duplicates_dropped",
            ):
                metadata.pop(rest_only, None)
        if stats.totals_reported:
            metadata["sis_reported_count"] = stats.totals_reported[-1]
            metadata["count_reconciled"] = bool(stats.reconciled)
            if not stats.reconciled:
                context.log.warning(
                    f"tenant {tenant_id!r}, {name}: the SIS reported {stats.totals_reported[-1]} records, "
                    f"{stats.records_received - stats.duplicates} were received"
                )
        yield dg.Output(result.frame, metadata=metadata)
        yield _check(tenant, quarantined, len(result.frame) + quarantined, key)

    return _asset


def _with_lines(quarantine: pd.DataFrame, bundle, collection: str) -> pd.DataFrame:
    """Validation rejects of a CSV bundle, placed at their file and line."""
    lines = line_of(bundle, collection)
    filename = f"{FILE_NAMES[collection]}.csv"
    reasons = [
        r if ".csv line " in r else (f"{filename} line {lines[s]}: {r}" if s in lines else r)
        for s, r in zip(
            quarantine["sourcedId"].astype(object), quarantine["reason"].astype(object), strict=True
        )
    ]
    return quarantine.assign(reason=pd.array(reasons, dtype=quarantine["reason"].dtype))


oneroster_assets = [build_collection_asset(c) for c in COLLECTIONS.values()]
