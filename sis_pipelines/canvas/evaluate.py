"""Before a tenant's first upload (or after a SIS change): what a night's snapshot would change
in Canvas as it stands now, read from Canvas itself (its SIS export report). Nothing is
uploaded. Per Canvas file: records the SIS implies, records Canvas holds for this tenant,
matched, to create, to change (which fields) and present in Canvas but absent from the SIS
(what an import would remove or orphan), with examples.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from ..core.errors import StoredStateError
from ..core.figures import Figures, Markdown
from ..core.lake import Lake
from ..core.storage import atomic_write_bytes, read_frame, write_frame
from ..core.tenant_night import TenantNight
from .compare import read_whole, rows_in
from .conversion import renamed_files, renames
from .delta import REMOVALS, compute_delta, deletion_guard, harm_summary
from .enrollments import INTERNAL
from .files import FILES
from .provision import canvas_files
from .scope import canvas_ids

if TYPE_CHECKING:
    from ..services.connect import Services

EXAMPLES = 3


def tenants_rows(frame: pd.DataFrame, name: str, prefix: str) -> pd.DataFrame:
    """The rows of a Canvas file that belong to the tenant: their SIS ids carry its prefix."""
    key = FILES[name].key[0]
    if not prefix or key not in frame.columns:
        return frame
    return frame[frame[key].fillna("").str.startswith(prefix)].reset_index(drop=True)


def evaluate_night(lake: Lake, services: Services, tn: TenantNight) -> Figures:
    """Compares the night's Canvas mapping with what Canvas holds; stores and sums it up."""
    tenant_id, tenant, night = tn.id, tn.tenant, tn.night
    assert tenant.canvas is not None
    current = canvas_files(lake, tenant_id, night)
    if current is None:
        raise StoredStateError(
            f"tenant {tenant_id!r}, night {night}: no Canvas mapping; materialize it first: "
            f"sis-pipelines run --tenant {tenant_id} --night {night} --select "
            f'"group:oneroster or key:canvas/mapping"'
        )
    with services.canvas(tenant_id, tenant, night) as canvas:
        held = canvas.sis_export()
    prefix = tenant.canvas.sis_id_prefix
    in_canvas = {
        name: tenants_rows(frame, name, prefix) for name, frame in held.items() if name in FILES
    }
    if "enrollments" in in_canvas:
        in_canvas["enrollments"] = _with_term_end(in_canvas)
    scoped = lake.out_of_scope(night, tenant_id)
    out_of_scope = (
        canvas_ids(read_frame(scoped), tenant.canvas.sis_id_prefix) if scoped.exists() else None
    )
    # A conversion stored for the night (convert --go): Canvas as it will be once renamed.
    renaming = lake.canvas_file("change_sis_id", night, tenant_id)
    if renaming.exists() and (by_type := renames(read_frame(renaming))):
        in_canvas = {n: read_whole(f) for n, f in renamed_files(in_canvas, by_type).items()}
    delta = compute_delta(in_canvas, current, tenant.canvas, night, out_of_scope=out_of_scope)
    changes, changes_file = delta.changes, lake.evaluation(night, tenant_id)
    write_frame(changes, changes_file)
    passed, _ = deletion_guard(in_canvas, current, delta, tenant.canvas.max_removal_share)
    guard = (
        "The deletion guard would let it through."
        if passed
        else f"The deletion guard would stop it: {harm_summary(delta)}."
    )
    report = _markdown(tenant_id, night, _summary(changes, current, in_canvas), changes, guard)
    atomic_write_bytes(report.encode(), lake.evaluation_report(night, tenant_id))
    return {"evaluation": Markdown(report), "changes_file": changes_file}


def _with_term_end(held: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Canvas's enrollments with their term's end date, as the mapping keeps it, so a removal
    reads as it would in an import (completed once the term ended, else deleted)."""
    enrollments = held["enrollments"]
    course_of = _lookup(held.get("sections"), "section_id", "course_id")
    term_of = _lookup(held.get("courses"), "course_id", "term_id")
    end_of = _lookup(held.get("terms"), "term_id", "end_date")
    course = enrollments["course_id"]
    if "section_id" in enrollments.columns:
        course = course.where(course.notna(), enrollments["section_id"].map(course_of))
    return enrollments.assign(**{INTERNAL: course.map(term_of).map(end_of)})


def _lookup(frame: pd.DataFrame | None, key: str, value: str) -> pd.Series:
    if frame is None or key not in frame.columns or value not in frame.columns:
        return pd.Series(dtype=object)
    return frame.drop_duplicates(key).set_index(key)[value]


def _summary(changes: pd.DataFrame, current, in_canvas) -> pd.DataFrame:
    rows = []
    for name in FILES:
        mine = changes[changes["file"] == name]
        actions = mine["action"]
        create = int((actions == "add").sum())
        change = int((actions == "update").sum())
        remove = int(actions.isin(REMOVALS).sum())
        implied = rows_in(current.get(name))
        held = len(in_canvas.get(name, ()))
        if not (implied or held):
            continue
        rows.append(
            {
                "file": name,
                "in_sis": implied,
                "in_canvas": held,
                "matched": implied - create - change,
                "to_create": create,
                "to_change": change,
                "absent_from_sis": remove,
            }
        )
    return pd.DataFrame(rows)


def _markdown(
    tenant_id: str, night: date, table: pd.DataFrame, changes: pd.DataFrame, guard: str
) -> str:
    lines = [
        f"# What night {night} of {tenant_id} would change in Canvas as it stands",
        "",
        guard,
        "",
        "| file | in the SIS | in Canvas | matched | to create | to change | in Canvas, absent from the SIS |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r.file} | {r.in_sis} | {r.in_canvas} | {r.matched} | {r.to_create} | "
            f"{r.to_change} | {r.absent_from_sis} |"
            for r in table.itertuples()
        ),
        "",
    ]
    for (name, action), group in changes.groupby(["file", "action"], sort=True):
        examples = ", ".join(
            f"`{sid}` ({reason})"
            for sid, reason in group[["sis_id", "reason"]].head(EXAMPLES).itertuples(index=False)
        )
        lines.append(f"- {name}, {action}: {examples}")
    return "\n".join(lines) + "\n"
