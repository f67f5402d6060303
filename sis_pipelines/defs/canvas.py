"""Canvas provisioning assets: mapping, guarded delta and package, upload and tracking."""

import json

import dagster as dg
import pandas as pd
from upath import UPath

from ..canvas.api import FAILED, CanvasError, import_messages
from ..canvas.delta import changes_markdown, compute_delta, deletion_guard, guard_markdown
from ..canvas.files import ORDER
from ..canvas.mapping import INTERNAL, MAPPED_AS_DICTIONARY, MAPPED_COLUMNS, map_snapshot
from ..canvas.package import CanvasCsvError, build_zip
from ..canvas.source import open_canvas
from ..memory import release_memory
from ..storage import atomic_write_bytes, data_dir, read_frame, tenant_file, write_frame
from ..tenants import Canvas, Tenant
from .partitions import tenant_and_night, tenant_night
from .resources import DataLake, TenantsResource

ALLOW_MASS_REMOVAL_TAG = "sis_pipelines/allow_mass_removal"
FORCE_UPLOAD_TAG = "sis_pipelines/force_upload"
GUARD_CHECK = "deletion_guard"
MAPPING = dg.AssetKey(["canvas", "mapping"])
DELTA = dg.AssetKey(["canvas", "delta"])
SIS_IMPORT = dg.AssetKey(["canvas", "sis_import"])
OWNERS = ["team:data-engineering"]


def _canvas(
    context: dg.AssetExecutionContext, tenants: TenantsResource, tenant_id: str
) -> tuple[Tenant, Canvas] | None:
    """The tenant and its Canvas section, or None (the asset is skipped) when it has none."""
    tenant = tenants.tenant(tenant_id)
    if tenant.canvas is None:
        context.log.info(f"tenant {tenant_id!r} has no canvas section: Canvas provisioning skipped")
        return None
    return tenant, tenant.canvas


def _ledger_path(lake: DataLake, tenant_id: str) -> UPath:
    return tenant_file(lake.root or data_dir(), "canvas_applied", tenant_id, ".json")


def read_ledger(lake: DataLake, tenant_id: str) -> dict[str, dict]:
    """Nights applied to Canvas: night -> {import_id, workflow_state}."""
    path = _ledger_path(lake, tenant_id)
    return json.loads(path.read_text()) if path.exists() else {}


def _mapping(lake: DataLake, night: str, tenant_id: str) -> dict[str, UPath] | None:
    """The stored Canvas files of a night: the delta reads them itself, column by column."""
    files = {}
    for name in ORDER:
        path = lake.path("canvas_mapping", name, night, tenant_id)
        if path.exists():
            files[name] = path
    return files or None


@dg.asset(
    key=MAPPING,
    ins={
        name: dg.AssetIn(
            key=["oneroster", name],
            metadata={"columns": columns, "dictionary": MAPPED_AS_DICTIONARY.get(name)},
        )
        for name, columns in MAPPED_COLUMNS.items()
    },
    partitions_def=tenant_night,
    group_name="canvas",
    output_required=False,  # skipped for tenants without a canvas section
    kinds={"pandas", "parquet", "canvas"},
    owners=OWNERS,
    description="The full Canvas state a night's OneRoster snapshot implies: accounts, terms, courses, sections, users, enrollments (and observers), with prefixed SIS ids.",
)
def canvas_mapping(
    context: dg.AssetExecutionContext,
    tenants: TenantsResource,
    lake: DataLake,
    **snapshot: pd.DataFrame,
):
    tenant_id, night = tenant_and_night(context)
    found = _canvas(context, tenants, tenant_id)
    if found is None:
        return
    _, cfg = found
    files = map_snapshot(snapshot, cfg, night)
    for name, frame in files.items():
        write_frame(frame, lake.path("canvas_mapping", name, str(night), tenant_id))
    metadata = {f"{name}_rows": len(frame) for name, frame in files.items()}
    metadata["users_without_login_id"] = files["users"].attrs.get("without_login", 0)
    del files, snapshot
    release_memory()  # written: the delta step that follows starts without them
    yield dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=DELTA,
    deps=[MAPPING],
    partitions_def=tenant_night,
    group_name="canvas",
    output_required=False,  # skipped for tenants without a canvas section
    kinds={"pandas", "canvas"},
    owners=OWNERS,
    description=(
        "Tonight's Canvas SIS Import delta against the last night applied to Canvas, every row explained in "
        "canvas/changes/<night>/<tenant>.parquet, packaged as canvas/sis_import/<night>/<tenant>.zip when the deletion guard passes."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            GUARD_CHECK,
            asset=DELTA,
            blocking=True,
            description="Blocks the upload when a night would remove more than the tenant's max_removal_share of active users, courses, sections or enrollments",
        )
    ],
)
def canvas_delta(context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake):
    tenant_id, night = tenant_and_night(context)
    found = _canvas(context, tenants, tenant_id)
    if found is None:
        return
    _, cfg = found
    current = _mapping(lake, str(night), tenant_id)
    if current is None:
        raise dg.Failure(
            f"tenant {tenant_id!r}, night {night}: no Canvas mapping; materialize canvas/mapping first",
            allow_retries=False,
        )
    applied = sorted(n for n in read_ledger(lake, tenant_id) if n < str(night))
    base_night = applied[-1] if applied else None
    previous = _mapping(lake, base_night, tenant_id) if base_night else None
    delta = compute_delta(previous, current, cfg, night)
    passed, findings = deletion_guard(previous, current, delta, cfg.max_removal_share)
    overridden = not passed and context.run.tags.get(ALLOW_MASS_REMOVAL_TAG, "").lower() == "true"
    write_frame(delta.changes, lake.path("canvas", "changes", str(night), tenant_id))
    zip_path = lake.path("canvas", "sis_import", str(night), tenant_id, ".zip")
    if passed or overridden:
        sent = (
            {n: read_frame(p) for n, p in current.items()}
            if cfg.import_mode == "diffing"
            else delta.files
        )
        package = {n: f.drop(columns=[INTERNAL], errors="ignore") for n, f in sent.items()}
        try:
            data = build_zip(package) if any(len(f) for f in package.values()) else None
        except CanvasCsvError as exc:
            raise dg.Failure(
                f"tenant {tenant_id!r}, night {night}: {exc}", allow_retries=False
            ) from None
        if data is not None:
            atomic_write_bytes(data, zip_path)
        elif zip_path.exists():
            zip_path.unlink()
    elif zip_path.exists():
        zip_path.unlink()  # never leave an older package where a blocked one would be
    if overridden:
        context.log.warning(
            f"tenant {tenant_id!r}, night {night}: mass removal allowed by the {ALLOW_MASS_REMOVAL_TAG} tag of run {context.run_id}"
        )
    summary = changes_markdown(delta)
    metadata: dict[str, object] = {
        "changes": dg.MetadataValue.md(summary),
        "rows": len(delta.changes),
        "applied_base_night": base_night or "none (first import)",
        "import_mode": cfg.import_mode,
    }
    for action in ("add", "update", "delete", "suspend", "complete"):
        metadata[f"{action}_rows"] = int((delta.changes["action"] == action).sum())
    guard_md = guard_markdown(findings, cfg.max_removal_share, delta)
    yield dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=GUARD_CHECK,
                passed=passed or overridden,
                severity=dg.AssetCheckSeverity.ERROR,
                description=(
                    "within the limit"
                    if passed
                    else f"over the limit, allowed on purpose by run {context.run_id} ({ALLOW_MASS_REMOVAL_TAG})"
                    if overridden
                    else "over the limit: nothing will be uploaded. Re-run with the tag sis_pipelines/allow_mass_removal=true (or --allow-mass-removal) to let it through."
                ),
                metadata={
                    "what_would_be_removed": dg.MetadataValue.md(guard_md),
                    "overridden": overridden,
                    **{f"{f.file}_removal_share": round(f.removal_share, 6) for f in findings},
                },
            )
        ],
    )


@dg.asset(
    key=SIS_IMPORT,
    deps=[DELTA],
    partitions_def=tenant_night,
    group_name="canvas",
    output_required=False,  # skipped for tenants without a canvas section
    kinds={"canvas"},
    owners=OWNERS,
    description="Posts the night's zip to Canvas sis_imports and follows it to a terminal state; idempotent per night.",
)
def canvas_sis_import(context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake):
    tenant_id, night = tenant_and_night(context)
    found = _canvas(context, tenants, tenant_id)
    if found is None:
        return
    tenant, cfg = found
    night_s = str(night)
    ledger = read_ledger(lake, tenant_id)
    force = context.run.tags.get(FORCE_UPLOAD_TAG, "").lower() == "true"
    zip_path = lake.path("canvas", "sis_import", night_s, tenant_id, ".zip")
    if night_s in ledger and not force:
        yield dg.MaterializeResult(
            metadata={
                "outcome": "already imported",
                "import_id": str(ledger[night_s].get("import_id")),
            }
        )
        return
    later = [n for n in ledger if n > night_s]
    if later and not force:
        yield dg.MaterializeResult(
            metadata={"outcome": f"not uploaded: a later night ({max(later)}) is already applied"}
        )
        return
    if cfg.dry_run:
        yield dg.MaterializeResult(
            metadata={
                "outcome": "dry run: the zip was built, not uploaded",
                "zip": dg.MetadataValue.path(str(zip_path)),
            }
        )
        return

    def record(entry: dict) -> None:
        ledger[night_s] = entry
        atomic_write_bytes(
            json.dumps(ledger, indent=1, sort_keys=True).encode(), _ledger_path(lake, tenant_id)
        )

    if not zip_path.exists():
        record({"import_id": None, "workflow_state": "nothing to send"})
        yield dg.MaterializeResult(metadata={"outcome": "nothing to send"})
        return
    params: dict[str, object] = {}
    if cfg.override_sis_stickiness:
        params["override_sis_stickiness"] = "true"
    if cfg.import_mode == "diffing":
        params |= {
            "diffing_data_set_identifier": f"sis_pipelines:{tenant_id}:rostering",
            "change_threshold": cfg.change_threshold,
            "diffing_user_remove_status": cfg.user_remove_status,
            "diffing_drop_status": "completed",  # a dropped enrollment keeps its work
        }
    try:
        with open_canvas(tenant_id, tenant, lake.root or data_dir()) as canvas:
            with zip_path.open("rb") as fh:
                created = canvas.post_sis_import(fh.read(), params)
            state = canvas.wait(created["id"])
            requests, throttled = canvas.requests, canvas.throttled
    except (CanvasError, RuntimeError) as exc:
        raise dg.Failure(str(exc)) from None
    messages = import_messages(state)
    workflow_state = state.get("workflow_state")
    if workflow_state in FAILED:
        raise dg.Failure(
            f"tenant {tenant_id!r}, night {night}: Canvas SIS import {created['id']} {workflow_state}: "
            + "; ".join(messages[:10]),
            allow_retries=False,
        )
    record({"import_id": created["id"], "workflow_state": workflow_state})
    counts = (state.get("data") or {}).get("counts") or {}
    yield dg.MaterializeResult(
        metadata={
            "outcome": "imported",
            "import_id": str(created["id"]),
            "workflow_state": workflow_state,
            "messages": dg.MetadataValue.md("\n".join(f"- {m}" for m in messages) or "none"),
            "requests": requests,
            "throttled": throttled,
            **{f"{k}_imported": int(v) for k, v in counts.items()},
        }
    )


canvas_assets = [canvas_mapping, canvas_delta, canvas_sis_import]
