"""What grade passback takes back from the SIS so that it converges: the lineItems and results
in our ledger that the latest Canvas gradebook no longer implies.

Only objects of the ledger (ours) are ever removed, and only within the courses this pass read
whole. A lineItem goes when its assignment was deleted, unpublished, omitted from the final
grade, stopped counting or left the passback (``post_to_sis``); its results go first. A
result goes when its grade was cleared (nothing to report) while the student is still in the
class: a student who left keeps the results already in the SIS. Course grade lineItems stay
(a closed grading period's grades are final); a student's course grade result goes when
Canvas no longer gives a current score.

A removal is ``DELETE /{results|lineItems}/{id}``, or, where the SIS or the endpoint
configuration takes only PUT, the SIS's own record PUT back with ``status: tobedeleted``.
The removal guard counts them against our objects in scope, like Canvas's deletion guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..core.figures import Figures, Markdown
from .canvas_gradebook import TEXT, CanvasGradebook
from .payloads import SisState, students_by_class

# Text held by Arrow, not as Python strings: a district's ledger is a row per result we ever
# sent (millions).
LEDGER_COLUMNS = {
    "key": TEXT,
    "sis_id": TEXT,
    "body_hash": TEXT,
    "score": "Float64",
    "score_status": TEXT,
    "night": TEXT,
    "kind": TEXT,
    "class": TEXT,
    "course": TEXT,
    "line_item_key": TEXT,
    "student": TEXT,
}
PLURAL = {"lineItem": "lineItems", "result": "results"}


def empty_ledger() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in LEDGER_COLUMNS.items()})


def complete_ledger(ledger: pd.DataFrame) -> pd.DataFrame:
    """A ledger with every column; rows written before the ledger kept kind, class, lineItem
    and student have them read back from their keys (``a:<assignment>:<class>``,
    ``cg:<class>[:<period>]``, ``r:<lineItem key>:<student>``, ``c:<title>``)."""
    out = ledger.copy()
    for column, dtype in LEDGER_COLUMNS.items():
        if column not in out:
            out[column] = pd.Series(pd.NA, index=out.index, dtype=dtype)
    kind = out["kind"]
    result = kind.eq("result").fillna(False)
    need = (
        kind.isna()
        | (kind.eq("lineItem").fillna(False) & out["class"].isna())
        | (result & (out["line_item_key"].isna() | out["student"].isna() | out["class"].isna()))
    )
    if not need.any():
        # A district's ledger is a row per result ever sent, and this release fills every
        # column: splitting its keys took hundreds of megabytes of Python strings.
        return out.astype(LEDGER_COLUMNS)
    filled = _read_back(out[need])
    for column in ("kind", "line_item_key", "student", "class"):
        out[column] = out[column].astype(LEDGER_COLUMNS[column])
        out.loc[need, column] = filled[column].astype(LEDGER_COLUMNS[column])
    return out.astype(LEDGER_COLUMNS)


def _read_back(out: pd.DataFrame) -> pd.DataFrame:
    """Kind, lineItem, student and class read back from the rows' keys, where missing."""
    out = out.copy()
    key = out["key"].astype("string")
    prefix = key.str.split(":", n=1).str[0]
    kind = prefix.map({"c": "category", "a": "lineItem", "cg": "lineItem", "r": "result"})
    out["kind"] = out["kind"].fillna(kind.astype("string"))
    result = prefix == "r"
    line_item_key = key.str.slice(2).str.rsplit(":", n=1).str[0]
    out["line_item_key"] = out["line_item_key"].mask(
        result & out["line_item_key"].isna(), line_item_key
    )
    out["student"] = out["student"].mask(
        result & out["student"].isna(), key.str.rsplit(":", n=1).str[-1]
    )
    item_key = key.where(~result, out["line_item_key"])
    class_of = (
        item_key.str.split(":", n=2)
        .str[2]
        .where(item_key.str.startswith("a:"), item_key.str.split(":").str[1])
    )
    class_of = class_of.where(prefix != "c")  # a category belongs to no class
    out["class"] = out["class"].fillna(class_of.astype("string"))
    return out.astype(LEDGER_COLUMNS)


@dataclass
class RemovalPlan:
    requests: list[dict[str, Any]]  # results first, then lineItems
    ours: dict[str, int]  # our lineItems and results in the pass's courses
    removing: dict[str, int]

    def __add__(self, other: RemovalPlan) -> RemovalPlan:
        return RemovalPlan(
            self.requests + other.requests,
            {k: self.ours.get(k, 0) + other.ours.get(k, 0) for k in self.ours | other.ours},
            {
                k: self.removing.get(k, 0) + other.removing.get(k, 0)
                for k in self.removing | other.removing
            },
        )

    def share(self, kind: str) -> float:
        return self.removing[kind] / self.ours[kind] if self.ours[kind] else 0.0

    def over(self, max_share: float, floor: int) -> bool:
        """Whether the guard stops it: more than ``floor`` and more than ``max_share`` of ours."""
        return any(
            self.removing[k] > floor and self.share(k) > max_share for k in ("lineItem", "result")
        )

    def figures(self) -> Figures:
        out: Figures = {}
        for kind in ("lineItem", "result"):
            out[f"{kind}_removals"] = self.removing[kind]
            out[f"{kind}_removal_share"] = round(self.share(kind), 6)
        return out

    def table(self, sample: int = 50) -> Markdown:
        if not self.requests:
            return Markdown("nothing to remove")
        # LineItems first: they say what a teacher did; their results follow from them.
        ordered = sorted(self.requests, key=lambda r: r["kind"] != "lineItem")
        rows = [
            f"| {r['kind']} | `{r['key']}` | {r['class']} | {r['reason']} |"
            for r in ordered[:sample]
        ]
        more = len(self.requests) - sample
        return Markdown(
            "| kind | our key | class | why |\n|---|---|---|---|\n"
            + "\n".join(rows)
            + (f"\n\n… and {more} more" if more > 0 else "")
        )


def plan_removals(
    ledger: pd.DataFrame,
    wanted: set[str],
    book: CanvasGradebook,
    sis: SisState,
    prefix: str,
    method: str,
    night_end: str,
) -> RemovalPlan:
    """Our objects in the courses read that the gradebook no longer implies, as requests
    (``ledger`` complete, as ``state.read_ledger`` gives it)."""
    students = students_by_class(book, prefix)
    course_of_class = dict(zip(students["class"], students["course_id"], strict=False))
    led = ledger.assign(
        course=ledger["course"].fillna(ledger["class"].map(course_of_class).astype("string"))
    )
    scope = led[led["course"].isin(book.courses) & led["kind"].isin(list(PLURAL))]
    unwanted = ~scope["key"].isin(wanted)
    items = scope[(scope["kind"] == "lineItem") & unwanted & scope["key"].str.startswith("a:")]
    results = scope[scope["kind"] == "result"]
    enrolled = pd.MultiIndex.from_frame(students[["class", "student"]].astype("string"))
    in_class = pd.Series(
        pd.MultiIndex.from_frame(results[["class", "student"]].astype("string")).isin(enrolled),
        index=results.index,
    )
    of_removed_item = results["line_item_key"].isin(items["key"])
    cleared = results["line_item_key"].isin(wanted) & in_class
    gone = results[~results["key"].isin(wanted) & (of_removed_item | cleared)]
    records = _sis_records(sis)
    removed_items = set(items["key"])
    requests = [
        _removal(
            row,
            records,
            method,
            night_end,
            "its lineItem is removed"
            if row["line_item_key"] in removed_items
            else "the grade was cleared in Canvas",
        )
        for row in gone.to_dict("records")
    ] + [
        _removal(row, records, method, night_end, "its assignment no longer passes back")
        for row in items.to_dict("records")
    ]
    return RemovalPlan(
        requests,
        ours={k: int((scope["kind"] == k).sum()) for k in PLURAL},
        removing={"lineItem": len(items), "result": len(gone)},
    )


def _sis_records(sis: SisState) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for records in sis.line_items.values():
        out |= {("lineItem", r["sourcedId"]): r for r in records}
    for records in sis.results.values():
        out |= {("result", r["sourcedId"]): r for r in records}
    return out


def _removal(
    row: dict[str, Any],
    records: dict[tuple[str, str], dict[str, Any]],
    method: str,
    night_end: str,
    reason: str,
) -> dict[str, Any]:
    kind, sis_id = row["kind"], row["sis_id"]
    meta = {
        "key": row["key"],
        "kind": kind,
        "class": row["class"],
        "course": row["course"],
        "removal": True,
        "reason": reason,
        **({"line_item_key": row["line_item_key"]} if kind == "result" else {}),
    }
    path = f"/{PLURAL[kind]}/{sis_id}"
    current = records.get((kind, sis_id))
    if current is None or current.get("status", "active") != "active":
        # Not in the SIS any more (or already marked): nothing to send, the ledger forgets it.
        return {"method": "FORGET", "path": path, "body": None, **meta}
    if method == "delete":
        return {"method": "DELETE", "path": path, "body": None, **meta}
    marked = {**current, "status": "tobedeleted", "dateLastModified": night_end}
    return {"method": "PUT", "path": path, "body": {kind: marked}, **meta}
