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
from .files import FILES, GUARDED, ORDER
from .mapping import INTERNAL

REMOVALS = {"deleted": "delete", "suspended": "suspend", "completed": "complete"}


@dataclass
class Delta:
    files: dict[str, pd.DataFrame]  # CSV rows to send, per file
    changes: pd.DataFrame  # file, sis_id, action, reason

    def count(self, file: str, action: str) -> int:
        c = self.changes
        return int(((c["file"] == file) & (c["action"] == action)).sum())

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


def file_delta(
    name: str, previous: pd.DataFrame | None, current: pd.DataFrame, cfg: Canvas, night: date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    spec = FILES[name]
    key = list(spec.key)
    values = [c for c in current.columns if c not in key and c != INTERNAL]
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
    merged = previous.merge(current, on=key, how="outer", suffixes=("_old", ""), indicator=True)
    added = merged["_merge"] == "right_only"
    removed = merged["_merge"] == "left_only"
    both = merged["_merge"] == "both"
    changed_columns = []
    differs = np.zeros(len(merged), dtype=bool)
    for column in values:
        old, new = merged[f"{column}_old"], merged[column]
        diff = both.to_numpy() & ~((old == new) | (old.isna() & new.isna())).to_numpy()
        differs |= diff
        changed_columns.append((column, diff))
    reason = np.full(len(merged), "", dtype=object)
    for column, diff in changed_columns:
        reason = np.where(
            diff, np.where(reason == "", "changed: " + column, reason + ", " + column), reason
        )
    # Removed rows keep their last values; only the status changes.
    for column in values + ([INTERNAL] if INTERNAL in merged else []):
        old_col = f"{column}_old"
        if old_col in merged:
            merged.loc[removed, column] = merged.loc[removed, old_col]
    removal = _removal_status(name, merged.loc[removed, [c for c in current.columns]], cfg, night)
    merged.loc[removed, "status"] = removal
    merged["_action"] = None
    merged.loc[added, "_action"] = "add"
    merged.loc[both & differs, "_action"] = "update"
    merged.loc[removed, "_action"] = [REMOVALS.get(s, s) for s in removal]
    merged["_reason"] = reason
    merged.loc[added, "_reason"] = "new in the SIS"
    merged.loc[removed, "_reason"] = np.where(
        removal == "completed",
        "gone from the SIS after its term ended: completed, work kept",
        "gone from the SIS",
    )
    out = merged[merged["_action"].notna()]
    rows = out[[c for c in current.columns]].reset_index(drop=True)
    changes = pd.DataFrame(
        {
            "file": name,
            "sis_id": _sis_id(out, spec.key).to_numpy(),
            "action": out["_action"].to_numpy(),
            "reason": out["_reason"].to_numpy(),
        }
    )
    return rows, changes


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
