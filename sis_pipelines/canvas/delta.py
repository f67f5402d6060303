"""The smallest Canvas SIS Import that takes Canvas from the last applied night to tonight.

Added and changed rows are written whole (so dates that Canvas clears on an empty cell are
always present); what becomes of rows that left the SIS is the lifecycle's decision
(``lifecycle.py``: concluded, kept, completed, suspended or deleted). Every row carries an
action and a reason, and the deletion guard counts the harmful ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from ..core.tenants import Canvas
from .compare import (
    FileSource,
    columns_of,
    compare,
    comparing,
    count_where,
    distinct,
    read_whole,
    rows_in,
    studying_users,
)
from .files import FILES, GUARDED, ORDER
from .lifecycle import KEEP, RETAINED, Decisions, Lifecycle, action_of
from .mapping import INTERNAL

REMOVALS = ("delete", "suspend", "complete", "conclude")  # what takes from Canvas


@dataclass
class Delta:
    files: dict[str, pd.DataFrame]  # CSV rows to send, per file
    changes: pd.DataFrame  # file, sis_id, action, reason
    harmful: np.ndarray = field(default_factory=lambda: np.array([], bool))  # per change
    # Rows that stay in Canvas after leaving the SIS (concluded courses, kept sections and
    # terms), as Canvas holds them now: the night's state is its mapping and these.
    retained: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.changes.empty


def _sis_id(frame: pd.DataFrame, key: tuple[str, ...]) -> pd.Series:
    out = frame[key[0]].astype(str)
    for column in key[1:]:
        out = out + "|" + frame[column].astype(str)
    return out


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


@dataclass
class FileChanges:
    """One Canvas file's comparison: rows added, changed (as they are now, with the names of
    the changed columns) and gone from the SIS."""

    name: str
    columns: list[str]
    added: pd.DataFrame
    changed: pd.DataFrame
    changed_reasons: list[str]
    gone: pd.DataFrame


def compare_file(name: str, previous: FileSource | None, current: FileSource | None) -> FileChanges:
    spec = FILES[name]
    if current is None:
        columns = [c for c in columns_of(previous) if c in spec.columns or c == INTERNAL]  # type: ignore[arg-type]
        current = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    columns = columns_of(current)
    key, values = key_and_values(name, columns)
    if not rows_in(previous):
        rows = read_whole(current)
        none = rows.iloc[:0]
        return FileChanges(name, columns, rows, none, [], none)
    with comparing(previous, current, key, values, columns) as (old, new):  # type: ignore[arg-type]
        found = compare(old, new, key)
    flags = _flags(found.changed_was, found.changed_now, values)
    really = flags.any(axis=1)  # a hash that differs while every value is alike: types only
    changed, flags = found.changed_now[really].reset_index(drop=True), flags[really]
    changed_names = np.array(values, dtype=object)
    reasons = ["changed: " + ", ".join(changed_names[row]) for row in flags]
    return FileChanges(name, columns, found.added, changed, reasons, found.removed)


def file_delta(
    name: str,
    previous: FileSource | None,
    current: FileSource | None,
    cfg: Canvas,
    night: date,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows to send for one Canvas file, and one explained change per row (its removals
    decided on this file alone: see ``compute_delta`` for the night's)."""
    delta = compute_delta(
        {name: previous} if previous is not None else None, {name: current}, cfg, night
    )
    return delta.files.get(name, pd.DataFrame()), delta.changes


def _previous_terms(
    previous: Mapping[str, FileSource] | None, current: Mapping[str, FileSource]
) -> pd.DataFrame:
    """Every term either night knows (tonight's first), for names and end dates."""
    frames = [
        read_whole(side[name])[["term_id", "name", "end_date"]]
        for side in (current, previous or {})
        for name in ("terms",)
        if side.get(name) is not None and rows_in(side[name])
    ]
    if not frames:
        return pd.DataFrame(columns=["term_id", "name", "end_date"])
    return pd.concat(frames, ignore_index=True).drop_duplicates("term_id")


def _ids(source: FileSource | None, column: str) -> set[str]:
    if source is None or not rows_in(source):
        return set()
    frame = source if isinstance(source, pd.DataFrame) else None
    if frame is None:
        return set(distinct(source, column))
    return set(frame[column].dropna().astype(str)) if column in frame else set()


def compute_delta(
    previous: Mapping[str, FileSource] | None,
    current: Mapping[str, FileSource | None],
    cfg: Canvas,
    night: date,
    *,
    retained: Mapping[str, pd.DataFrame] | None = None,
    enrolled: Mapping[str, set[str]] | None = None,
    out_of_scope: Mapping[str, set[str]] | None = None,
) -> Delta:
    """The delta of every Canvas file; each night's files in memory or as stored Parquet.

    ``previous``: the Canvas state of the last applied night (its mapping), ``retained``: the
    rows that night kept in Canvas after they left the SIS (added to ``previous``),
    ``enrolled``: the course and section ids that ever had an enrollment before it,
    ``out_of_scope``: the Canvas ids whose records the tenant's scope left out tonight. Rows
    that left the SIS (or the scope) are decided by the lifecycle (``lifecycle.py``)."""
    previous = dict(previous or {})
    for name, rows in (retained or {}).items():
        if len(rows):
            base = previous.get(name)
            previous[name] = pd.concat(
                [read_whole(base), rows] if base is not None else [rows], ignore_index=True
            )
    found: dict[str, FileChanges] = {}
    for name in ORDER:
        before = previous.get(name)
        now = current.get(name)
        if now is None and before is None:
            continue
        found[name] = compare_file(name, before, now)
    life = Lifecycle(
        cfg,
        night,
        _previous_terms(previous, current),
        # Given (the stored record with the last applied night's), or read from ``previous``.
        enrolled_courses=set(enrolled["courses"])
        if enrolled is not None
        else _ids(previous.get("enrollments"), "course_id"),
        enrolled_sections=set(enrolled["sections"])
        if enrolled is not None
        else _ids(previous.get("enrollments"), "section_id"),
        carried={
            name: set(_sis_id(rows, FILES[name].key)) for name, rows in (retained or {}).items()
        },
        out_of_scope={k: set(v) for k, v in (out_of_scope or {}).items()},
    )
    if "sections" in found and life.out_of_scope.get("sections"):
        # A course left the scope with its classes.
        gone = found["sections"].gone
        scoped = gone["section_id"].astype(str).isin(life.out_of_scope["sections"])
        life.out_of_scope["courses"] = set(gone.loc[scoped, "course_id"].astype(str))
    decided = _decide(found, life, previous, current, night)
    return _assemble(found, decided)


def with_retained(
    files: Mapping[str, pd.DataFrame], retained: Mapping[str, pd.DataFrame]
) -> dict[str, pd.DataFrame]:
    """A night's whole Canvas state: its mapping, and the rows retained after leaving the SIS
    (what a diffed import sends, so that Canvas does not delete what it no longer sees)."""
    state = dict(files)
    for name, rows in retained.items():
        if len(rows):
            base = state.get(name)
            state[name] = (
                pd.concat([base, rows.reindex(columns=base.columns)], ignore_index=True)
                if base is not None
                else rows
            )
    return state


def _kept(
    found: dict[str, FileChanges], decided: dict[str, Decisions], name: str, column: str
) -> set[str]:
    if name not in decided or not len(decided[name].status):
        return set()
    gone = found[name].gone
    return set(gone.loc[decided[name].retained, column].astype(str))


def _decide(
    found: dict[str, FileChanges],
    life: Lifecycle,
    previous: Mapping[str, FileSource],
    current: Mapping[str, FileSource | None],
    night: date,
) -> dict[str, Decisions]:
    """Every removal, in the order one depends on another: courses, their sections, the
    terms they use, the enrollments in them, the users."""
    decided: dict[str, Decisions] = {}
    if "courses" in found:
        decided["courses"] = life.courses(found["courses"].gone)
    courses_kept = _kept(found, decided, "courses", "course_id")
    if "sections" in found:
        decided["sections"] = life.sections(found["sections"].gone, courses_kept)
    sections_kept = _kept(found, decided, "sections", "section_id")
    if "terms" in found:
        in_use = _ids(current.get("courses"), "term_id") | _kept(
            found, decided, "courses", "term_id"
        )
        in_use |= _of_retained_courses(previous, life, "term_id")
        decided["terms"] = life.containers("terms", found["terms"].gone, in_use)
    if "accounts" in found:
        in_use = _accounts_in_use(found, decided, previous, current, life)
        decided["accounts"] = life.containers("accounts", found["accounts"].gone, in_use)
    if "enrollments" in found:
        decided["enrollments"] = life.enrollments(
            found["enrollments"].gone, courses_kept, sections_kept
        )
    if "users" in found:
        gone = found["users"].gone
        studying = (
            studying_users(previous.get("enrollments"), set(gone["user_id"].astype(str)), night)
            if len(gone)
            else set()
        )
        decided["users"] = life.users(gone, studying)
    for name in found:
        if name not in decided:
            decided[name] = life.others(name, found[name].gone)
    return decided


def _of_retained_courses(
    previous: Mapping[str, FileSource], life: Lifecycle, column: str
) -> set[str]:
    """A column's values over the courses retained before (concluded, still in Canvas);
    nothing is read when none is retained."""
    courses = previous.get("courses")
    if courses is None or not life.carried.get("courses") or not rows_in(courses):
        return set()
    frame = read_whole(courses)
    held = frame["course_id"].astype(str).isin(life.carried["courses"])
    return set(frame.loc[held, column].dropna().astype(str))


def _accounts_in_use(
    found: dict[str, FileChanges],
    decided: dict[str, Decisions],
    previous: Mapping[str, FileSource],
    current: Mapping[str, FileSource | None],
    life: Lifecycle,
) -> set[str]:
    """Accounts holding a course Canvas keeps (tonight's, concluded, retained) or an account
    of ours, and the accounts above those."""
    used = _ids(current.get("courses"), "account_id") | _kept(
        found, decided, "courses", "account_id"
    )
    used |= _of_retained_courses(previous, life, "account_id")
    parents: dict[str, str] = {}
    for side in (previous, current):
        source = side.get("accounts")
        if source is not None and rows_in(source):
            frame = read_whole(source)
            parents |= dict(
                zip(frame["account_id"].astype(str), frame["parent_account_id"], strict=True)
            )
    used |= _ids(current.get("accounts"), "account_id")
    for account in list(used):
        cursor, seen = parents.get(account), 0
        while cursor is not None and seen < 16:
            used.add(cursor)
            cursor, seen = parents.get(cursor), seen + 1
    return used


ACTION_OF = {
    name: {status: action_of(name, status) for status in (*FILES[name].statuses, KEEP)}
    for name in FILES
}


def _assemble(found: dict[str, FileChanges], decided: dict[str, Decisions]) -> Delta:
    files: dict[str, pd.DataFrame] = {}
    changes, harmful, retained = [], [], {}
    for name in ORDER:
        if name not in found:
            continue
        f, d = found[name], decided[name]
        spec = FILES[name]
        gone = f.gone.copy()
        if len(gone):
            gone["status"] = d.status
        said = ~d.silent if len(gone) else np.array([], bool)
        sent = said & (d.status != KEEP) if len(gone) else np.array([], bool)
        if name in RETAINED and len(gone):
            rows = gone[d.retained].copy()
            rows["status"] = np.where(rows["status"] == KEEP, "active", rows["status"])
            retained[name] = rows[[c for c in f.columns if c in rows]].reset_index(drop=True)
        removed = gone[said].reset_index(drop=True)
        statuses = d.status[said] if len(gone) else np.array([], object)
        rows = pd.concat([f.added, f.changed, gone[sent]], ignore_index=True)
        files[name] = rows[f.columns] if len(rows) else rows.reindex(columns=f.columns)
        listed = pd.concat([f.added, f.changed, removed], ignore_index=True)
        actions = (
            ["add"] * len(f.added)
            + ["update"] * len(f.changed)
            # Mapped a column at a time: a rollover removes ten million enrollments at once.
            + list(pd.Series(statuses, dtype=object).map(ACTION_OF[name]))
        )
        reasons = (
            ["new in the SIS"] * len(f.added)
            + f.changed_reasons
            + (list(np.asarray(d.reason, dtype=object)[said]) if len(gone) else [])
        )
        changes.append(
            pd.DataFrame(
                {
                    "file": name,
                    "sis_id": _sis_id(listed, spec.key).to_numpy() if len(listed) else [],
                    "action": actions,
                    "reason": reasons,
                }
            )
        )
        harmful.append(
            np.concatenate(
                [
                    np.zeros(len(f.added) + len(f.changed), bool),
                    d.harmful[said] if len(gone) else [],
                ]
            ).astype(bool)
        )
    frame = (
        pd.concat(changes, ignore_index=True)
        if changes
        else pd.DataFrame(columns=["file", "sis_id", "action", "reason"])
    )
    frame = frame.astype({"file": str, "sis_id": str, "action": str, "reason": str})
    mask = np.concatenate(harmful) if harmful else np.array([], bool)
    return Delta(files, frame, mask, retained)


def with_whole(delta: Delta, whole: Mapping[str, pd.DataFrame]) -> Delta:
    """The delta with the night's files Canvas takes whole (``files.WHOLE``: a conversion's
    renames, logins to add): sent as they came, each row listed, none of them harmful."""
    whole = {  # every column of the file (a renames file may give only old_id, new_id, type)
        name: rows.reindex(columns=list(FILES[name].columns), fill_value="")
        for name, rows in whole.items()
        if len(rows)
    }
    if not whole:
        return delta
    listed = [
        pd.DataFrame(
            {
                "file": name,
                "sis_id": _sis_id(rows, FILES[name].key).to_numpy(),
                "action": "send",
                "reason": f"sent whole: Canvas takes {name}.csv as it comes (never compared)",
            }
        )
        for name, rows in whole.items()
    ]
    changes = pd.concat([delta.changes, *listed], ignore_index=True).astype(str)
    harmful = np.concatenate([delta.harmful, np.zeros(len(changes) - len(delta.changes), bool)])
    return Delta({**delta.files, **whole}, changes, harmful, delta.retained)


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
    """Whether tonight's harmful changes (deletions of work, conclusions before a term's end,
    suspensions mid-term) stay within ``limit`` of each guarded file's active rows. The
    conclusions of an ended term, a rollover's, are not counted."""
    findings = []
    for name in GUARDED:
        active_before = count_where(previous.get(name) if previous else None, "status", "active")
        active_now = count_where(current.get(name), "status", "active")
        mine = (delta.changes["file"] == name).to_numpy() & delta.harmful
        findings.append(GuardFinding(name, active_before, int(mine.sum()), active_now))
    passed = all(f.removal_share <= limit for f in findings)
    return passed, findings


def harm_groups(delta: Delta) -> pd.DataFrame:
    """The harmful changes grouped by file, action and reason, largest first."""
    harmful = delta.changes[delta.harmful]
    if harmful.empty:
        return pd.DataFrame(columns=["file", "action", "reason", "rows"])
    groups = harmful.groupby(["file", "action", "reason"]).size().rename("rows").reset_index()
    return groups.sort_values("rows", ascending=False, kind="stable").reset_index(drop=True)


def harm_summary(delta: Delta, groups: int = 3) -> str:
    """One line: e.g. "360 courses: left the SIS before its term (Fall 2025) ended: concluded"."""
    return "; ".join(
        f"{g.rows} {g.file}: {g.reason}" for g in harm_groups(delta).head(groups).itertuples()
    )


def guard_markdown(
    findings: list[GuardFinding], limit: float, delta: Delta, sample: int = 20
) -> str:
    lines = [
        "| file | active before | harmful | share | active now | limit |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for f in findings:
        lines.append(
            f"| {f.file} | {f.active_before} | {f.removals} | {f.removal_share:.2%} | {f.active_now} | {limit:.0%} |"
        )
    groups = harm_groups(delta)
    if len(groups):
        lines += ["", "Counted by the guard, grouped:", ""]
        lines += [f"- {g.rows} {g.file} ({g.action}): {g.reason}" for g in groups.itertuples()]
        harmful = delta.changes[delta.harmful]
        lines += ["", f"First {min(sample, len(harmful))} of {len(harmful)}:", ""]
        lines += [
            f"- {r.file} `{r.sis_id}`: {r.action} ({r.reason})"
            for r in harmful.head(sample).itertuples()
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
