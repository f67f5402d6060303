"""Grade passback assets: the Canvas gradebook snapshot, the OneRoster payloads, the push."""

import json
from datetime import UTC, date, datetime, time
from typing import Any

import dagster as dg
import orjson
import pandas as pd
from upath import UPath

from ..canvas.api import CanvasError
from ..canvas.source import open_canvas
from ..gpb.canvas_gradebook import (
    ASSIGNMENT_COLUMNS,
    STUDENT_COLUMNS,
    SUBMISSION_COLUMNS,
    CanvasGradebook,
    read_gradebook,
)
from ..gpb.payloads import Payloads, Settings, SisState, build, students_by_class
from ..gpb.push import empty_ledger, push
from ..gpb.sis import open_gradebook
from ..oneroster.errors import OneRosterError
from ..oneroster.source import MissingSecretError
from ..storage import atomic_write_bytes, data_dir, read_frame, tenant_file, write_frame
from ..tenants import Tenant
from .canvas import MAPPING, SIS_IMPORT
from .partitions import tenant_and_night
from .partitions import tenant_night as partitions
from .resources import DataLake, TenantsResource

FORCE_PUSH_TAG = "sis_pipelines/force_push"
BACKFILL_TAGS = ("dagster/backfill", "sis_pipelines/backfill")
GRADEBOOK = dg.AssetKey(["gpb", "canvas_gradebook"])
PAYLOADS = dg.AssetKey(["gpb", "payloads"])
PUSH = dg.AssetKey(["gpb", "push"])
OWNERS = ["team:data-engineering"]
FRAMES = {
    "assignments": ASSIGNMENT_COLUMNS,
    "submissions": SUBMISSION_COLUMNS,
    "students": STUDENT_COLUMNS,
}


def _gpb_tenant(
    context: dg.AssetExecutionContext, tenants: TenantsResource, tenant_id: str
) -> Tenant | None:
    tenant = tenants.tenant(tenant_id)
    if tenant.gpb.endpoints == "off" or tenant.canvas is None:
        context.log.info(f"tenant {tenant_id!r}: grade passback is off")
        return None
    return tenant


def _root(lake: DataLake) -> str:
    return lake.root or data_dir()


def _window_path(lake: DataLake, night: str, tenant_id: str) -> UPath:
    return lake.path("gpb/canvas_gradebook", "window", night, tenant_id, ".json")


def _passes_path(lake: DataLake, tenant_id: str) -> UPath:
    return tenant_file(UPath(_root(lake)) / "gpb", "passes", tenant_id, ".json")


def _ledger_path(lake: DataLake, tenant_id: str) -> UPath:
    return tenant_file(UPath(_root(lake)) / "gpb", "ledger", tenant_id, ".parquet")


def read_passes(lake: DataLake, tenant_id: str) -> dict[str, dict[str, Any]]:
    """Nights whose push completed: night -> {graded_until}."""
    path = _passes_path(lake, tenant_id)
    return json.loads(path.read_text()) if path.exists() else {}


def read_ledger(lake: DataLake, tenant_id: str) -> pd.DataFrame:
    path = _ledger_path(lake, tenant_id)
    if not path.exists():
        return empty_ledger()
    return read_frame(path).astype({c: t for c, t in empty_ledger().dtypes.items()})


def requests_path(lake: DataLake, night: str, tenant_id: str) -> UPath:
    return lake.path("gpb", "requests", night, tenant_id, ".jsonl")


def _gradebook_frames(lake: DataLake, night: str, tenant_id: str) -> CanvasGradebook:
    frames = {}
    for name, columns in FRAMES.items():
        path = lake.path("gpb/canvas_gradebook", name, night, tenant_id)
        if not path.exists():
            raise dg.Failure(
                f"tenant {tenant_id!r}, night {night}: no Canvas gradebook snapshot; materialize gpb/canvas_gradebook first",
                allow_retries=False,
            )
        frames[name] = read_frame(path).astype(columns)
    return CanvasGradebook(frames["assignments"], frames["submissions"], frames["students"], [])


def _end_of(night: date) -> datetime:
    return datetime.combine(night, time(23, 59, 59), UTC)


@dg.asset(
    key=GRADEBOOK,
    deps=[SIS_IMPORT, MAPPING],
    partitions_def=partitions,
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
    tenant_id, night = tenant_and_night(context)
    tenant = _gpb_tenant(context, tenants, tenant_id)
    if tenant is None:
        return
    courses_path = lake.path("canvas_mapping", "courses", str(night), tenant_id)
    if not courses_path.exists():
        raise dg.Failure(
            f"tenant {tenant_id!r}, night {night}: no Canvas mapping; materialize canvas/mapping first",
            allow_retries=False,
        )
    courses = read_frame(courses_path)
    course_ids = sorted(
        courses.loc[courses["status"].astype("string") == "active", "course_id"].astype(str)
    )
    earlier = [n for n in read_passes(lake, tenant_id) if n < str(night)]
    graded_since = read_passes(lake, tenant_id)[max(earlier)]["graded_until"] if earlier else None
    simulated = tenant.canvas is not None and tenant.canvas.source == "simulator"
    graded_until = _end_of(night) if simulated else datetime.now(UTC)
    try:
        with open_canvas(tenant_id, tenant, _root(lake), night=night) as canvas:
            book = read_gradebook(canvas, course_ids, graded_since)
            requests, throttled = canvas.requests, canvas.throttled
    except (CanvasError, RuntimeError) as exc:
        raise dg.Failure(str(exc)) from None
    for name, frame in book.frames().items():
        write_frame(frame, lake.path("gpb/canvas_gradebook", name, str(night), tenant_id))
    window = {
        "graded_since": graded_since,
        "graded_until": graded_until.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    atomic_write_bytes(json.dumps(window).encode(), _window_path(lake, str(night), tenant_id))
    yield dg.MaterializeResult(
        metadata={
            "courses": len(course_ids),
            "courses_with_assignments": int(book.assignments["course_id"].nunique()),
            "courses_not_in_canvas": len(book.missing_courses),
            "assignments": len(book.assignments),
            "submissions": len(book.submissions),
            "students": len(book.students),
            "graded_since": graded_since or "beginning (first pass)",
            "graded_until": window["graded_until"],
            "canvas_requests": requests,
            "canvas_throttled": throttled,
        }
    )


@dg.asset(
    key=PAYLOADS,
    deps=[GRADEBOOK],
    ins={
        "classes": dg.AssetIn(key=["oneroster", "classes"]),
        "academic_sessions": dg.AssetIn(key=["oneroster", "academic_sessions"]),
    },
    partitions_def=partitions,
    group_name="gpb",
    output_required=False,
    kinds={"oneroster"},
    owners=OWNERS,
    description=(
        "The night's OneRoster gradebook requests (categories, lineItems, results) in send order, "
        "in gpb/requests/<night>/<tenant>.jsonl; what cannot be sent is in gpb/report/<night>/<tenant>.parquet."
    ),
)
def gpb_payloads(
    context: dg.AssetExecutionContext,
    tenants: TenantsResource,
    lake: DataLake,
    classes: pd.DataFrame,
    academic_sessions: pd.DataFrame,
):
    tenant_id, night = tenant_and_night(context)
    tenant = _gpb_tenant(context, tenants, tenant_id)
    if tenant is None:
        return
    book = _gradebook_frames(lake, str(night), tenant_id)
    ledger = read_ledger(lake, tenant_id)
    known_ids = dict(zip(ledger["key"].astype(str), ledger["sis_id"].astype(str), strict=True))
    try:
        with open_gradebook(tenant_id, tenant, _root(lake), night) as sis:
            settings = Settings.of(
                tenant, _rostering_base(tenant, sis.client.base_url), sis.client.base_url
            )
            involved = students_by_class(book, settings.prefix)
            involved = involved[involved["course_id"].isin(book.assignments["course_id"])]
            state = SisState(categories=sis.categories())
            for class_id in sorted(involved["class"].unique()):
                state.line_items[class_id] = sis.class_line_items(class_id)
                state.results[class_id] = sis.class_results(class_id)
            reads = sis.reads
    except (OneRosterError, MissingSecretError) as exc:
        raise dg.Failure(str(exc)) from None
    payloads = build(book, classes, academic_sessions, state, known_ids, settings, night)
    _write_requests(payloads, requests_path(lake, str(night), tenant_id))
    write_frame(payloads.report, lake.path("gpb", "report", str(night), tenant_id))
    counts = payloads.counts()
    metadata: dict[str, Any] = {
        "requests": len(payloads.requests),
        **{f"{kind}_requests": counts.get(kind, 0) for kind in ("category", "lineItem", "result")},
        "not_sent": len(payloads.report),
        "endpoints": tenant.gpb.endpoints,
        "requests_file": dg.MetadataValue.path(str(requests_path(lake, str(night), tenant_id))),
    }
    metadata["sis_reads"] = reads
    if len(payloads.report):
        metadata["not_sent_why"] = dg.MetadataValue.md(
            "\n".join(
                f"- {r['kind']} `{r['key']}` ({r['class'] or 'all classes'}): {r['reason']}"
                for r in payloads.report.head(50).astype(object).fillna("").to_dict("records")
            )
        )
    yield dg.MaterializeResult(metadata=metadata)


def _rostering_base(tenant: Tenant, gradebook_url: str) -> str:
    if tenant.oneroster.base_url:
        return tenant.oneroster.base_url
    return gradebook_url.replace("/gradebook/v1p2", "/rostering/v1p2")


def _write_requests(payloads: Payloads, path: UPath) -> None:
    lines = []
    for r in payloads.requests:
        meta = {k: r[k] for k in ("key", "kind", "class", "line_item_key") if r.get(k) is not None}
        lines.append(
            orjson.dumps(
                {"method": r["method"], "path": r["path"], "body": r["body"], "meta": meta}
            )
        )
    atomic_write_bytes(b"\n".join(lines) + (b"\n" if lines else b""), path)


def read_requests(path: UPath) -> list[dict[str, Any]]:
    out = []
    with path.open("rb") as fh:
        for line in fh.read().splitlines():
            if line.strip():
                r = orjson.loads(line)
                out.append(
                    {
                        "method": r["method"],
                        "path": r["path"],
                        "body": r["body"],
                        **r.get("meta", {}),
                    }
                )
    return out


@dg.asset(
    key=PUSH,
    deps=[PAYLOADS],
    partitions_def=partitions,
    group_name="gpb",
    output_required=False,
    kinds={"oneroster"},
    owners=OWNERS,
    description=(
        "Sends the night's requests to the SIS gradebook: lineItems before their results, bounded, "
        "idempotent; never over a grade the SIS changed unless the tenant says so; backfills only when forced. "
        "Outcomes in gpb/outcomes/<night>/<tenant>.parquet."
    ),
)
def gpb_push(context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake):
    tenant_id, night = tenant_and_night(context)
    tenant = _gpb_tenant(context, tenants, tenant_id)
    if tenant is None:
        return
    night_s = str(night)
    tags = context.run.tags
    forced = tags.get(FORCE_PUSH_TAG, "").lower() == "true"
    backfill = next((t for t in BACKFILL_TAGS if t in tags), None)
    if backfill and not forced:
        yield dg.MaterializeResult(
            metadata={
                "outcome": f"not pushed: a backfill run ({backfill}) computes payloads only; tag {FORCE_PUSH_TAG}=true to send"
            }
        )
        return
    passes = read_passes(lake, tenant_id)
    later = [n for n in passes if n > night_s]
    if later and not forced:
        yield dg.MaterializeResult(
            metadata={
                "outcome": f"not pushed: a later night ({max(later)}) was already pushed; older grades could overwrite newer ones"
            }
        )
        return
    path = requests_path(lake, night_s, tenant_id)
    if not path.exists():
        raise dg.Failure(
            f"tenant {tenant_id!r}, night {night}: no payloads; materialize gpb/payloads first",
            allow_retries=False,
        )
    requests = read_requests(path)
    ledger = read_ledger(lake, tenant_id)
    try:
        with open_gradebook(tenant_id, tenant, _root(lake), night) as sis:
            result = push(
                sis,
                requests,
                ledger,
                night_s,
                on_sis_change=tenant.gpb.on_sis_change,
                force=forced,
                max_concurrency=tenant.gpb.max_concurrency,
            )
    except (OneRosterError, MissingSecretError) as exc:
        raise dg.Failure(str(exc)) from None
    write_frame(result.outcomes, lake.path("gpb", "outcomes", night_s, tenant_id))
    write_frame(result.ledger, _ledger_path(lake, tenant_id))
    failed = result.count("failed")
    if not failed:
        window = json.loads(_window_path(lake, night_s, tenant_id).read_text())
        passes[night_s] = {"graded_until": window["graded_until"]}
        atomic_write_bytes(
            json.dumps(passes, indent=1, sort_keys=True).encode(), _passes_path(lake, tenant_id)
        )
    metadata: dict[str, Any] = {
        "requests": len(requests),
        **{status: result.count(status) for status in ("sent", "unchanged", "failed", "skipped")},
        "sis_changed_grades": len(result.conflicts),
        "on_sis_change": tenant.gpb.on_sis_change,
        "forced": forced,
        "outcomes": dg.MetadataValue.md(_outcomes_md(result.outcomes)),
    }
    if result.conflicts:
        metadata["sis_changed"] = dg.MetadataValue.md(
            "| result | SIS score | SIS status | we last sent | ours now |\n|---|---|---|---|---|\n"
            + "\n".join(
                f"| `{c['key']}` | {c['sis_score']} | {c['sis_status']} | {c['sent_score']} | {c['our_score']} |"
                for c in result.conflicts[:50]
            )
        )
    if failed:
        errors = result.outcomes.loc[result.outcomes["status"] == "failed", "error"].head(5)
        held = int(
            result.outcomes["error"].str.contains("in a row", regex=False).fillna(False).sum()
        )
        raise dg.Failure(
            f"tenant {tenant_id!r}, night {night}: {failed} of {len(requests)} gradebook requests failed"
            f"{f' and {held} more were held back' if held else ''}; "
            "a re-run sends only those and what changed. First errors: "
            + "; ".join(map(str, errors)),
            metadata=metadata,
            allow_retries=True,
        )
    yield dg.MaterializeResult(metadata=metadata)


def _outcomes_md(outcomes: pd.DataFrame) -> str:
    if outcomes.empty:
        return "no requests"
    table = outcomes.groupby(["kind", "status"]).size().reset_index(name="n")
    return "| kind | status | requests |\n|---|---|---|\n" + "\n".join(
        f"| {r.kind} | {r.status} | {r.n} |" for r in table.itertuples()
    )


gpb_assets = [canvas_gradebook, gpb_payloads, gpb_push]
