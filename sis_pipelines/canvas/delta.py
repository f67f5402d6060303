"""The smallest Canvas SIS Import that takes Canvas from the last applied night to tonight.

Added and changed rows are written whole (so dates that Canvas clears on an empty cell are
always present); rows that disappeared become removals: users deleted or suspended (per
tenant), enrollments completed when their term has ended (a term rollover never deletes
students' work) and deleted otherwise, courses completed or deleted likewise, the rest
deleted. Every row carries an action and a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..tenants import Canvas
from .files import FILES, GUARDED, ORDER
from .mapping import INTERNAL

REMOVALS = {"deleted": "delete", "suspended": "suspend", "completed": "complete"}


@dataclass
class Delta:
    files: dict[str, pd.DataFrame]  # CSV rows to send, per file
    changes: pd.DataFrame  # file, sis_id, action, reason

    @property
    def empty(self) -> bool:
        return self.changes.empty


def _sis_id(frame: pd.DataFrame, key: tuple[str, ...]) -> pd.Series:
    out = frame[key[0]].astype(str)
    for column in key[1:]:
        out = out + "|" + frame[column].astype(str)
    return out


def _removal_status(name: str, previous: pd.DataFrame, cfg: Canvas, night: date) -> np.ndarray:
    if name == "users":
        return np.full(len(previous), cfg.user_remove_status, dtype=object)
    if name in ("enrollments", "courses"):
        ends = previous[INTERNAL] if name == "enrollments" and INTERNAL in previous else None
        if ends is not None:
            ended = pd.to_datetime(ends, errors="coerce", utc=True).dt.date < night
            return np.where(ended.fillna(False).to_numpy(dtype=bool), "completed", "deleted")
    return np.full(len(previous), "deleted", dtype=object)


def _arrow(frame: pd.DataFrame, columns: list[str]) -> pa.Table:
    """Text columns as Arrow strings (None stays null), whatever the frame's dtypes."""
    return pa.table({c: pa.array(frame[c], type=pa.string(), from_pandas=True) for c in columns})


def _differs(old: pa.ChunkedArray, new: pa.ChunkedArray) -> pa.Array:
    same = pc.or_(pc.equal(old, new).fill_null(False), pc.and_(pc.is_null(old), pc.is_null(new)))
    return pc.invert(same)


def _numbered(table: pa.Table, key: list[str], name: str) -> pa.Table:
    return table.select(key).append_column(name, pa.array(np.arange(table.num_rows)))


def file_delta(
    name: str, previous: pd.DataFrame | None, current: pd.DataFrame, cfg: Canvas, night: date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    spec = FILES[name]
    key = list(spec.key)
    columns = list(current.columns)
    values = [c for c in columns if c not in key and c != INTERNAL]
    if previous is None or previous.empty:
        rows = current
        changes = pd.DataFrame(
            {
                "file": name,
                "sis_id": _sis_id(current, spec.key),
                "action": "add",
                "reason": "new in the SIS",
            }
        )
        return rows, changes
    # A hash join in Arrow over the keys and row numbers only; the value columns are then
    # compared by position, so the join never carries them (about twice as fast).
    old, new = _arrow(previous, columns), _arrow(current, columns)
    joined = _numbered(old, key, "_was").join(
        _numbered(new, key, "_now"), keys=key, join_type="full outer", coalesce_keys=True
    )
    was, now = joined["_was"], joined["_now"]
    both = pc.and_(pc.is_valid(was), pc.is_valid(now))
    was_both, now_both = was.filter(both), now.filter(both)
    diffs = {c: _differs(pc.take(old[c], was_both), pc.take(new[c], now_both)) for c in values}
    any_diff = pa.array(np.zeros(len(was_both), dtype=bool))
    for mask in diffs.values():
        any_diff = pc.or_(any_diff, mask)
    # File order, whatever order the join produced.
    changed_unordered = now_both.filter(any_diff)
    changed = pc.sort_indices(changed_unordered)
    changed_rows = pc.take(changed_unordered, changed)

    def rows_of(table: pa.Table, rows: pa.Array) -> pd.DataFrame:
        picked = table.take(rows)
        return (
            pd.DataFrame({c: picked[c].to_pandas() for c in columns})
            .astype(object)
            .where(lambda f: f.notna(), None)
        )

    add_rows = rows_of(new, now.filter(pc.is_null(was)).sort())
    update_rows = rows_of(new, changed_rows)
    gone = rows_of(old, was.filter(pc.is_null(now)).sort())
    removal = _removal_status(name, gone, cfg, night)
    gone["status"] = removal
    changed_names = np.array(values, dtype=object)
    flags = (
        np.column_stack(
            [
                pc.take(diffs[c].filter(any_diff), changed).to_numpy(zero_copy_only=False)
                for c in values
            ]
        )
        if values
        else np.zeros((len(update_rows), 0), bool)
    )
    update_reasons = ["changed: " + ", ".join(changed_names[row]) for row in flags]
    rows = pd.concat([add_rows, update_rows, gone], ignore_index=True)
    actions = (
        ["add"] * len(add_rows)
        + ["update"] * len(update_rows)
        + [REMOVALS.get(s, s) for s in removal]
    )
    reasons = (
        ["new in the SIS"] * len(add_rows)
        + update_reasons
        + [
            "gone from the SIS after its term ended: completed, work kept"
            if s == "completed"
            else "gone from the SIS"
            for s in removal
        ]
    )
    changes = pd.DataFrame(
        {
            "file": name,
            "sis_id": _sis_id(rows, spec.key).to_numpy() if len(rows) else [],
            "action": actions,
            "reason": reasons,
        }
    )
    return rows[columns], changes


def compute_delta(
    previous: Mapping[str, pd.DataFrame] | None,
    current: Mapping[str, pd.DataFrame],
    cfg: Canvas,
    night: date,
) -> Delta:
    files: dict[str, pd.DataFrame] = {}
    changes = []
    for name in ORDER:
        if name not in current and not (previous and name in previous):
            continue
        cur = current.get(name)
        if cur is None:
            cur = previous[name].iloc[0:0]  # type: ignore[index]
        rows, change = file_delta(
            name, None if previous is None else previous.get(name), cur, cfg, night
        )
        files[name] = rows
        changes.append(change)
    frame = (
        pd.concat(changes, ignore_index=True)
        if changes
        else pd.DataFrame(columns=["file", "sis_id", "action", "reason"])
    )
    return Delta(files, frame.astype({"file": str, "sis_id": str, "action": str, "reason": str}))


@dataclass
class GuardFinding:
    file: str
    active_before: int
    removals: int
    active_now: int

    @property
    def removal_share(self) -> float:
        return self.removals / self.active_before if self.active_before else 0.0

    @property
    def shrink_share(self) -> float:
        return (
            max(0.0, (self.active_before - self.active_now) / self.active_before)
            if self.active_before
            else 0.0
        )


def deletion_guard(
    previous: Mapping[str, pd.DataFrame] | None,
    current: Mapping[str, pd.DataFrame],
    delta: Delta,
    limit: float,
) -> tuple[bool, list[GuardFinding]]:
    """Whether tonight removes or shrinks no more than ``limit`` of any guarded file."""
    findings = []
    for name in GUARDED:
        before = previous.get(name) if previous else None
        active_before = 0 if before is None else int((before["status"] == "active").sum())
        now = current.get(name)
        active_now = 0 if now is None else int((now["status"] == "active").sum())
        removals = int(
            (
                (delta.changes["file"] == name) & delta.changes["action"].isin(REMOVALS.values())
            ).sum()
        )
        findings.append(GuardFinding(name, active_before, removals, active_now))
    passed = all(f.removal_share <= limit and f.shrink_share <= limit for f in findings)
    return passed, findings


def guard_markdown(
    findings: list[GuardFinding], limit: float, delta: Delta, sample: int = 20
) -> str:
    lines = [
        "| file | active before | removals | share | active now | limit |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for f in findings:
        lines.append(
            f"| {f.file} | {f.active_before} | {f.removals} | {f.removal_share:.2%} | {f.active_now} | {limit:.0%} |"
        )
    removed = delta.changes[delta.changes["action"].isin(REMOVALS.values())]
    if len(removed):
        lines += ["", f"Removals (first {min(sample, len(removed))} of {len(removed)}):", ""]
        lines += [
            f"- {r.file} `{r.sis_id}`: {r.action} ({r.reason})"
            for r in removed.head(sample).itertuples()
        ]
    return "\n".join(lines)


def changes_markdown(delta: Delta) -> str:
    if delta.empty:
        return "No change since the last applied night."
    counts = delta.changes.groupby(["file", "action"]).size().unstack(fill_value=0)
    header = "| file | " + " | ".join(counts.columns) + " |"
    lines = [header, "|---|" + "---:|" * len(counts.columns)]
    for file, row in counts.iterrows():
        lines.append(f"| {file} | " + " | ".join(str(int(v)) for v in row) + " |")
    return "\n".join(lines)
