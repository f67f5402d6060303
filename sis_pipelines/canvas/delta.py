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

from ..tenants import Canvas
from .compare import (
    FileSource,
    columns_of,
    compare,
    comparing,
    count_where,
    read_whole,
    rows_in,
)
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


def _flags(old: pd.DataFrame, new: pd.DataFrame, values: list[str]) -> np.ndarray:
    """Which value columns differ, row by row (None equals None)."""
    if not values:
        return np.zeros((len(new), 0), dtype=bool)
    a, b = old[values].to_numpy(dtype=object), new[values].to_numpy(dtype=object)
    return (a != b) & ~(pd.isna(a) & pd.isna(b))


def key_and_values(name: str, columns: list[str]) -> tuple[list[str], list[str]]:
    """A Canvas file's key, and the columns whose change makes an update."""
    key = list(FILES[name].key)
    return key, [c for c in columns if c not in key and c != INTERNAL]


def file_delta(
    name: str,
    previous: FileSource | None,
    current: FileSource | None,
    cfg: Canvas,
    night: date,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows to send for one Canvas file, and one explained change per row."""
    spec = FILES[name]
    if current is None:
        columns = [c for c in columns_of(previous) if c in spec.columns or c == INTERNAL]  # type: ignore[arg-type]
        current = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    columns = columns_of(current)
    key, values = key_and_values(name, columns)
    if not rows_in(previous):
        rows = read_whole(current)
        changes = pd.DataFrame(
            {
                "file": name,
                "sis_id": _sis_id(rows, spec.key),
                "action": "add",
                "reason": "new in the SIS",
            }
        )
        return rows, changes
    with comparing(previous, current, key, values, columns) as (old, new):  # type: ignore[arg-type]
        found = compare(old, new, key)
    add_rows, update_rows = found.added, found.changed_now
    gone, update_was = found.removed, found.changed_was
    flags = _flags(update_was, update_rows, values)
    really = flags.any(axis=1)  # a hash that differs while every value is alike: types only
    update_rows, flags = update_rows[really].reset_index(drop=True), flags[really]
    changed_names = np.array(values, dtype=object)
    update_reasons = ["changed: " + ", ".join(changed_names[row]) for row in flags]
    removal = _removal_status(name, gone, cfg, night)
    gone["status"] = removal
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
    previous: Mapping[str, FileSource] | None,
    current: Mapping[str, FileSource],
    cfg: Canvas,
    night: date,
) -> Delta:
    """The delta of every Canvas file; each night's files in memory or as stored Parquet."""
    files: dict[str, pd.DataFrame] = {}
    changes = []
    for name in ORDER:
        before = previous.get(name) if previous else None
        now = current.get(name)
        if now is None and before is None:
            continue
        rows, change = file_delta(name, before, now, cfg, night)
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
    previous: Mapping[str, FileSource] | None,
    current: Mapping[str, FileSource],
    delta: Delta,
    limit: float,
) -> tuple[bool, list[GuardFinding]]:
    """Whether tonight removes or shrinks no more than ``limit`` of any guarded file."""
    findings = []
    for name in GUARDED:
        active_before = count_where(previous.get(name) if previous else None, "status", "active")
        active_now = count_where(current.get(name), "status", "active")
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
