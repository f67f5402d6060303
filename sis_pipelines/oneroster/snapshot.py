"""A collection's snapshot of a tenant for a night: reused, fetched or read from the CSV drop,
validated, its rejects quarantined, and the figures of how it was taken.

A night is immutable: once stored, its snapshot is the truth about that night, and a real
SIS (which serves only its present state) is never asked for a past night unless the operator
forces it, on the record.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from ..core.errors import ConfigurationError, SisPipelinesError, StoredStateError
from ..core.figures import Check, Figures, Markdown
from ..core.lake import Lake
from ..core.nights import is_past
from ..core.secrets import remember
from ..core.storage import (
    StoredFile,
    atomic_write_table,
    parquet_rows,
    read_frame,
    staged,
    write_frame,
)
from ..core.tenant_night import OfTenantNight, TenantNight
from ..core.tenants import Tenant
from .batches import SnapshotWriter
from .collections import Collection
from .csv_bundle import (
    FILE_NAMES,
    PLACED,
    Bundle,
    BundleError,
    CsvRead,
    line_of,
    read_collection,
    streamed_blocks,
    streamed_read,
)
from .csv_columnar import RowPath
from .errors import OneRosterError
from .normalise import Rejects, arrow_schema
from .paging import FetchStats
from .privacy import contact_hook
from .reasons import markdown
from .shown import shown

if TYPE_CHECKING:
    from ..services.connect import Services
    from .client import OneRosterClient

# Figures only a REST fetch has: a CSV bundle has no pages, requests or server sort.
REST_ONLY = (
    "pages",
    "requests",
    "page_size_requested",
    "page_size_served",
    "sorted_by_server",
    "drift_rewinds",
    "duplicates_dropped",
)

STORED = "stored snapshot"  # the origin of a night taken again from its stored snapshot


QUARANTINE_CHECK = "quarantine"
REPAIRS_CHECK = "repairs"


@dataclass
class Snapshot:
    """A night's collection: its valid records (stored) and how it was taken."""

    stored: StoredFile  # the night's snapshot, published
    quarantined: int
    figures: Figures
    warnings: list[str] = field(default_factory=list)  # lines for the run's log
    notes: list[str] = field(default_factory=list)
    quarantine: pd.DataFrame | None = None  # sourcedId, reason, record (when taken tonight)
    other_files: int = 0  # quarantined rows of a bundle's side files (roles.csv…): not records
    repairs: pd.DataFrame | None = None  # sourcedId, field, value, reason (when taken tonight)

    @property
    def records(self) -> int:
        """Records of the collection (kept and quarantined), side-file rows aside."""
        return self.stored.rows + self.quarantined - self.other_files

    @property
    def quarantined_records(self) -> int:
        return self.quarantined - self.other_files

    @property
    def quarantined_share(self) -> float:
        return self.quarantined_records / self.records if self.records else 0.0

    def stops_the_night(self, max_quarantined_share: float) -> bool:
        """More records quarantined than the tenant allows: its night goes no further (a bad
        row of a side file, or fewer records, only warn)."""
        return self.quarantined_share > max_quarantined_share

    def checks(self, max_quarantined_share: float) -> list[Check]:
        """Its quarantine (severe above the tenant's share) and its repairs, with their
        reasons grouped; the counts are the step's figures (the tenant's trends)."""
        limit, share = max_quarantined_share, self.quarantined_share
        others = f", and {self.other_files} rows of other files" if self.other_files else ""
        repaired = int(self.figures.get("repaired", 0))  # type: ignore[arg-type]
        return [
            Check(
                QUARANTINE_CHECK,
                passed=self.quarantined == 0,  # a bad row of a side file warns as well
                severe=self.stops_the_night(limit),
                description=(
                    f"{self.quarantined_records} of {self.records} records quarantined "
                    f"({share:.2%}; limit {limit:.2%}){others}"
                    if self.quarantined
                    else "every record valid"
                ),
                table=_grouped(self.quarantine),
            ),
            Check(
                REPAIRS_CHECK,
                passed=repaired == 0,
                description=(
                    f"{repaired} fields repaired in kept records (the SIS's values are in the "
                    "repairs file)"
                    if repaired
                    else "no repair"
                ),
                table=_grouped(self.repairs),
            ),
        ]


def _grouped(frame: pd.DataFrame | None) -> Markdown | None:
    return None if frame is None or not len(frame) else Markdown(markdown(frame))


@dataclass(frozen=True)
class SnapshotRequest(OfTenantNight):
    """Which snapshot: the tenant-night, the collection, and whether to refetch."""

    tn: TenantNight
    collection: Collection
    force_refetch: bool = False


def take_snapshot(
    lake: Lake,
    services: Services,
    request: SnapshotRequest,
    references: Mapping[str, pa.Array],
) -> Snapshot:
    """The night's snapshot of the collection; its quarantine is stored, the snapshot is not
    (the caller's IO manager stores it). ``references``: the sourcedIds of each collection this
    one refers to, tonight."""
    r = request
    name = r.collection.name
    if r.tenant.privacy.leaves_out(name):
        return _left_out(lake, r)
    snapshot_path = lake.snapshot(name, r.night, r.tenant_id)
    if snapshot_path.exists() and not r.force_refetch:
        return _stored(lake, r)
    if r.tenant.oneroster.source == "rest" and is_past(r.night) and not r.force_refetch:
        raise StoredStateError(
            f"tenant {r.tenant_id!r}, {name}, night {r.night}: no stored snapshot, and the SIS serves only "
            "its present state. Re-run with --force-refetch to store today's data as that night (recorded)."
        )
    started = time.monotonic()
    bundle = None
    if r.tenant.oneroster.source == "csv":
        try:
            located = services.csv_bundle(r.tenant_id, r.tenant, r.night)
        except BundleError as exc:
            raise BundleError(f"tenant {r.tenant_id!r}, {name}, night {r.night}: {exc}") from None
        bundle = located.bundle
    notes: list[str] = []
    unchecked = _first_night_absent(lake, bundle, r, references) if bundle is not None else []
    for ref in unchecked:
        notes.append(
            f"tenant {r.tenant_id!r}, {name}, night {r.night}: its references to {ref} are not "
            f"checked: {ref} is absent from the bundle and no earlier night has it"
        )
    checked = {k: v for k, v in references.items() if k not in unchecked}
    quarantined = {
        ref: read_frame(path)
        for ref in checked
        if (path := lake.quarantine(ref, r.night, r.tenant_id)).exists()
    }
    fetched: CsvRead | None = None
    with staged(snapshot_path) as staging:
        writer = SnapshotWriter(
            r.collection,
            checked,
            quarantined,
            staging,
            max_repeated_share=r.tenant.validation.max_quarantined_share,
        )
        try:
            if bundle is not None:
                fetched = _read_csv(lake, bundle, r, writer)
                stats = fetched.stats
                absent = fetched.mode == "absent" and not fetched.table.num_rows
                keep_last = False  # a row twice in a file is a duplicate
                origin: Figures = {
                    "origin": "csv bundle",
                    "bundle": located.name,
                    "bundle_sha256": located.sha256,
                }
            else:
                with services.rostering(r.tenant_id, r.tenant, r.night) as client:
                    stats, by_school = _fetch_rest(client, lake, r, writer, notes)
                keep_last = by_school or not stats.sorted_by_server
                source = r.tenant.oneroster.source  # the tenants file's name for it
                origin = {"origin": "sis" if source == "rest" else source}
            result = writer.finish(keep_last)
        except ValueError as exc:
            writer.abandon()
            raise SisPipelinesError(f"tenant {r.tenant_id!r}: {exc}") from None
        except BaseException:
            writer.abandon()
            raise
        stats.duplicates += result.superseded
        fetch_s = time.monotonic() - started
        quarantine, repairs = result.quarantine, result.repairs
        if bundle is not None:
            quarantine = _with_lines(quarantine, bundle, name)
            repairs = _with_lines(repairs, bundle, name)
        # Before the snapshot is published: a night with a snapshot has its quarantine.
        quarantine_path = lake.quarantine(name, r.night, r.tenant_id)
        write_frame(quarantine, quarantine_path)
        repairs_path = lake.repairs(name, r.night, r.tenant_id)
        write_frame(repairs, repairs_path)
    warnings = [
        f"tenant {r.tenant_id!r}, {name}, record {shown(sid)}: {reason}"
        for sid, reason in zip(
            quarantine["sourcedId"].head(5), quarantine["reason"].head(5), strict=True
        )
    ]
    if fetched is not None and absent:
        warnings.append(
            f"tenant {r.tenant_id!r}, {name}, night {r.night}: absent from the bundle (its "
            "manifest says so) and no earlier night has it: no records tonight"
        )
    figures: Figures = {
        "quarantined": len(quarantine),
        "quarantine_file": quarantine_path,
        "repaired": len(repairs),
        "repairs_file": repairs_path,
        **origin,
        "oneroster_version": r.tenant.oneroster.version,
        **_fetch_figures(stats),
        "fetch_seconds": round(fetch_s, 3),
        "fetched_at": datetime.now(UTC),
        "refetch_forced": r.force_refetch,
    }
    if fetched is not None:
        figures["csv_mode"] = fetched.mode
        for filename, rows in fetched.rows_in_files.items():
            figures[f"rows_in_{filename}"] = rows
        for rest_only in REST_ONLY:
            figures.pop(rest_only, None)
    if stats.totals_reported:
        figures["sis_reported_count"] = stats.totals_reported[-1]
        figures["count_reconciled"] = bool(stats.reconciled)
        if not stats.reconciled:
            warnings.append(
                f"tenant {r.tenant_id!r}, {name}: the SIS reported {stats.totals_reported[-1]} records, "
                f"{stats.records_received - stats.duplicates} were received"
            )
    other = _other_files(quarantine, name) if bundle is not None else 0
    if other:
        figures["quarantined_rows_of_other_files"] = other
    return Snapshot(
        StoredFile(snapshot_path, result.rows),
        len(quarantine),
        figures,
        warnings,
        notes,
        quarantine=quarantine,
        repairs=repairs,
        other_files=other,
    )


def _other_files(quarantine: pd.DataFrame, name: str) -> int:
    """Quarantined rows of a bundle's other files (a 1.2 bundle's roles.csv, userProfiles.csv)."""
    reasons = quarantine["reason"].astype(str)
    placed = reasons.str.contains(PLACED, regex=True)
    return int((placed & ~reasons.str.startswith(f"{FILE_NAMES[name]}.csv line ")).sum())


def _first_night_absent(
    lake: Lake, bundle: Bundle, r: SnapshotRequest, references: Mapping[str, pa.Array]
) -> list[str]:
    """Referenced collections the bundle marks absent with no earlier night to take them from:
    references to them cannot be checked tonight, so they are not held against a record."""
    return [
        ref
        for ref in references
        if bundle.mode(ref) == "absent"
        and not any(n < str(r.night) for n in lake.snapshot_nights(ref, r.tenant_id))
    ]


# The collections a SIS also serves school by school (/schools/{id}/…, OneRoster 1.1 and 1.2).
BY_SCHOOL = frozenset({"courses", "classes", "enrollments"})


def _fetch_rest(
    client: OneRosterClient,
    lake: Lake,
    r: SnapshotRequest,
    writer: SnapshotWriter,
    notes: list[str],
) -> tuple[FetchStats, bool]:
    """The collection from the SIS into ``writer``: its bulk endpoint, or school by school as
    the tenant's ``oneroster.service`` says (``auto``: when the bulk endpoint fails after the
    client's retries, the collection is read again from the start, school by school). Its
    fetch figures, and whether it was read by school."""
    hook = privacy_hook(r.tenant_id, r.tenant, r.collection)
    service = r.tenant.oneroster.service if r.collection.name in BY_SCHOOL else "bulk"
    stats = client.stats_for(r.collection)
    if service != "by_school":
        try:
            for table, rejects in client.pages(r.collection, stats, hook):
                writer.add(table, rejects)
            return stats, False
        except OneRosterError as exc:
            if service != "auto" or not exc.retryable:
                raise
            writer.restart()
            notes.append(
                f"tenant {r.tenant_id!r}, {r.collection.name}: the bulk endpoint failed ({exc}); "
                "read school by school instead (oneroster.service: auto)"
            )
    schools = _schools(lake, r)
    stats = client.stats_for(r.collection)
    stats.endpoint = f"schools/{{id}}/{r.collection.endpoint} ({len(schools)} schools)"
    for table, rejects in client.by_school(r.collection, schools, stats, hook):
        writer.add(table, rejects)
    return stats, True


def _schools(lake: Lake, r: SnapshotRequest) -> list[str]:
    """The night's schools (orgs of type school), from its stored orgs snapshot."""
    path = lake.snapshot("orgs", r.night, r.tenant_id)
    if not path.exists():
        raise StoredStateError(
            f"tenant {r.tenant_id!r}, {r.collection.name}, night {r.night}: read by school, it "
            "needs the night's orgs first: materialize oneroster/orgs"
        )
    orgs = read_frame(path, ["sourcedId", "type"])
    return sorted(orgs.loc[orgs["type"].astype(str) == "school", "sourcedId"].astype(str))


def _fetch_figures(stats: FetchStats) -> Figures:
    return {
        "endpoint": stats.endpoint,
        "pages": stats.pages,
        "requests": stats.requests,
        "retries": stats.retries,
        "duplicates_dropped": stats.duplicates,
        "page_size_requested": stats.page_size_requested,
        "page_size_served": stats.page_size_served or stats.page_size_requested,
        "sorted_by_server": stats.sorted_by_server,
        "drift_rewinds": stats.drift_rewinds,
    }


def _left_out(lake: Lake, r: SnapshotRequest) -> Snapshot:
    """Demographics the tenant does not want: never fetched; an empty snapshot keeps lineage whole."""
    rejects = Rejects().to_table().to_pandas(types_mapper=pd.ArrowDtype)
    write_frame(rejects, lake.quarantine(r.collection.name, r.night, r.tenant_id))
    path = lake.snapshot(r.collection.name, r.night, r.tenant_id)
    atomic_write_table(arrow_schema(r.collection).empty_table(), path)
    return Snapshot(StoredFile(path, 0), 0, {"origin": "left out (privacy.demographics: false)"})


def _stored(lake: Lake, r: SnapshotRequest) -> Snapshot:
    name = r.collection.name
    path = lake.snapshot(name, r.night, r.tenant_id)
    quarantine_path = lake.quarantine(name, r.night, r.tenant_id)
    quarantined = parquet_rows(quarantine_path) if quarantine_path.exists() else 0
    repairs_path = lake.repairs(name, r.night, r.tenant_id)
    figures: Figures = {
        "quarantined": quarantined,
        "repaired": parquet_rows(repairs_path) if repairs_path.exists() else 0,
        "origin": STORED,
        "oneroster_version": r.tenant.oneroster.version,
    }
    note = f"{r.tenant_id} {name} {r.night}: reusing the stored snapshot"
    return Snapshot(StoredFile(path, parquet_rows(path)), quarantined, figures, notes=[note])


def _read_csv(lake: Lake, bundle: Bundle, r: SnapshotRequest, writer: SnapshotWriter) -> CsvRead:
    """A collection from the night's bundle, into ``writer``: a bulk file a block at a time
    where it can be read columnar; else whole (the row path), and a delta or absent file
    builds on the last stored night."""
    hook = privacy_hook(r.tenant_id, r.tenant, r.collection)
    blocks = streamed_blocks(bundle, r.collection, hook)
    if blocks is not None:
        records = 0
        try:
            for block in blocks:
                writer.add(block)
                records += block.num_rows
            return streamed_read(bundle, r.collection, records)
        except RowPath:
            writer.restart()
    read = _read_whole_csv(lake, bundle, r, hook)
    writer.add(read.table, read.rejects)
    read.table = read.table.slice(0, 0)  # the writer has it now
    return read


def _read_whole_csv(
    lake: Lake, bundle: Bundle, r: SnapshotRequest, hook: Callable[[dict], None] | None
) -> CsvRead:
    name = r.collection.name
    previous = None
    earlier = [n for n in lake.snapshot_nights(name, r.tenant_id) if n < str(r.night)]
    if earlier and bundle.mode(name) in ("delta", "absent"):
        frame = read_frame(lake.snapshot(name, earlier[-1], r.tenant_id))
        previous = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    return read_collection(bundle, r.collection, previous, hook)


def privacy_hook(
    tenant_id: str, tenant: Tenant, collection: Collection
) -> Callable[[dict], None] | None:
    """The tenant's data minimisation for this collection's raw records, if any."""
    if collection.name != "users":
        return None
    privacy = tenant.privacy
    hashing = privacy.contact_fields == "hash"
    salt = os.environ.get(privacy.hash_salt_env or "") if hashing else None
    if hashing and not salt:
        raise ConfigurationError(
            f"tenant {tenant_id!r}: environment variable {privacy.hash_salt_env} (privacy.hash_salt_env) is not set"
        )
    remember(salt)
    return contact_hook(privacy.contact_fields, salt)


def _with_lines(quarantine: pd.DataFrame, bundle: Bundle, collection: str) -> pd.DataFrame:
    """Validation rejects (or repairs) of a CSV bundle, placed at their file and line."""
    if not len(quarantine):
        return quarantine
    lines = line_of(bundle, collection, set(quarantine["sourcedId"].dropna().astype(str)))
    filename = f"{FILE_NAMES[collection]}.csv"
    reasons = [
        r if ".csv line " in r else (f"{filename} line {lines[s]}: {r}" if s in lines else r)
        for s, r in zip(
            quarantine["sourcedId"].astype(object), quarantine["reason"].astype(object), strict=True
        )
    ]
    return quarantine.assign(reason=pd.array(reasons, dtype=quarantine["reason"].dtype))
