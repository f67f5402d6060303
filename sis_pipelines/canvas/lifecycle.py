"""What becomes of a Canvas object whose record left the SIS: the school year's lifecycle.

Canvas keeps a course's content, submissions and grades only while the course exists, so the
school year's rollover (last year's sessions, classes and enrollments leave the SIS) must
never delete. A course whose term has ended is concluded (``completed``); one that leaves
before its term ends is concluded too (``course_removal: conclude``), or deleted only if it
never had an enrollment (``delete_if_unused``). A section is kept with its course (Canvas has
no concluded section) and a term while a course uses it (Canvas refuses to delete it). An
enrollment of an ended term, or of a course concluded tonight, is completed; a user is
suspended or deleted per tenant. See ``../shared/reference/canvas-lifecycle.md``.

Objects kept in Canvas after their records left the SIS are *retained*: carried night after
night in the state they were left in (a diffed import keeps sending them, a course that comes
back is reopened) and never decided again. Each decision says whether it is *harmful*: the
deletion guard counts those (deletions of work, and conclusions before a term's end), not the
conclusions of an ended term.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from ..core.tenants import Canvas
from .files import FILES

# Canvas files whose objects may stay in Canvas after leaving the SIS.
RETAINED = ("accounts", "terms", "courses", "sections")
SIS, SCOPE = "left the SIS", "left the tenant's scope"
FILES_KEY = {"terms": "term_id", "accounts": "account_id"}
KEEP = "keep"  # nothing sent: Canvas keeps the object as it is
ACTIONS = {
    "deleted": "delete",
    "suspended": "suspend",
    "completed": "complete",
    KEEP: KEEP,
}


def action_of(name: str, status: str) -> str:
    if name == "courses" and status == "completed":
        return "conclude"
    return ACTIONS.get(status, status)


def ended(end_dates: pd.Series | Iterable, night: date) -> np.ndarray:
    """Whether each end date (Canvas's ISO time of the day, or a date) is before ``night``,
    the deployment's night: the one rule for terms, courses, sections and enrollments."""
    values = end_dates if isinstance(end_dates, pd.Series) else pd.Series(list(end_dates))
    ends = pd.to_datetime(values.astype(object), errors="coerce", utc=True, format="mixed")
    # Midnight UTC of a date is that date (Canvas's dates are written so): a whole column
    # compared at once, never row by row (ten million enrollments leave at a rollover).
    return (ends < pd.Timestamp(night, tz="UTC")).to_numpy(bool)


def _pick(*choices: tuple[np.ndarray, str], otherwise: str) -> list[str]:
    """The first text whose mask holds, row by row, without a Python loop over rows."""
    out = np.full(len(choices[0][0]) if choices else 0, otherwise, dtype=object)
    for mask, text in reversed(choices):
        out = np.where(mask, text, out)
    return list(out)


@dataclass
class Decisions:
    """The removals of one Canvas file: what to send for each row that left the SIS."""

    status: np.ndarray  # Canvas status to send, or KEEP
    reason: list[str]
    harmful: np.ndarray  # counted by the deletion guard
    silent: np.ndarray  # already so in Canvas (retained before): nothing sent, nothing said

    @classmethod
    def empty(cls) -> Decisions:
        return cls(np.array([], object), [], np.array([], bool), np.array([], bool))

    @property
    def retained(self) -> np.ndarray:
        """Rows that stay in Canvas: concluded or kept."""
        return np.isin(self.status, ["completed", KEEP])


@dataclass
class Lifecycle:
    """The night's facts every decision reads: the terms (ids, names, end dates), the course
    and section ids that ever had an enrollment, and what is retained from before."""

    cfg: Canvas
    night: date
    terms: pd.DataFrame  # term_id, name, end_date: the night's and the retained ones
    enrolled_courses: set[str] = field(default_factory=set)
    enrolled_sections: set[str] = field(default_factory=set)
    carried: dict[str, set[str]] = field(default_factory=dict)  # keys retained before
    # Canvas ids whose records are still in the SIS but out of the tenant's scope, per file.
    out_of_scope: dict[str, set[str]] = field(default_factory=dict)

    def _left(self, name: str, keys: pd.Series) -> np.ndarray:
        """How each row left: the SIS, or the tenant's scope."""
        out = keys.astype(object).isin(self.out_of_scope.get(name, set())).to_numpy(bool)
        return np.where(out, SCOPE, SIS).astype(object)

    def _term(self, term_ids: pd.Series) -> tuple[np.ndarray, list[str]]:
        """Whether each term has ended, and its name for the reason."""
        lookup = self.terms.drop_duplicates("term_id").set_index("term_id")
        ids = term_ids.astype(object)
        ends = ids.map(lookup["end_date"]) if len(lookup) else pd.Series(None, index=ids.index)
        names = ids.map(lookup["name"]) if len(lookup) else pd.Series(None, index=ids.index)
        names = names.where(names.notna(), ids).where(ids.notna(), "no term")
        return ended(ends, self.night), [str(n) for n in names]

    def _carried(self, name: str, keys: pd.Series) -> np.ndarray:
        return keys.astype(object).isin(self.carried.get(name, set())).to_numpy(bool)

    def courses(self, gone: pd.DataFrame) -> Decisions:
        if gone.empty:
            return Decisions.empty()
        over, term = self._term(
            gone["term_id"] if "term_id" in gone else pd.Series([None] * len(gone))
        )
        ids = gone["course_id"].astype(object)
        used = ids.isin(self.enrolled_courses).to_numpy(bool)
        delete = ~over & ~used & (self.cfg.course_removal == "delete_if_unused")
        status = np.where(delete, "deleted", "completed").astype(object)
        left = self._left("courses", ids)
        reason = [
            f"{how} after its term ({t}) ended: concluded, work kept"
            if o
            else f"{how} before its term ({t}) ended, never had an enrollment: deleted"
            if d
            else f"{how} before its term ({t}) ended: concluded, work kept"
            for o, d, t, how in zip(over, delete, term, left, strict=True)
        ]
        was = gone["status"].astype(object).to_numpy() if "status" in gone else status
        silent = self._carried("courses", ids) | (was == "completed")
        status = np.where(silent, was, status)
        harmful = ~over & ~silent  # a conclusion or deletion before the term's end
        return Decisions(status, reason, harmful, silent)

    def sections(self, gone: pd.DataFrame, courses_kept: set[str]) -> Decisions:
        if gone.empty:
            return Decisions.empty()
        over = (
            ended(gone["end_date"], self.night) if "end_date" in gone else np.zeros(len(gone), bool)
        )
        kept_course = gone["course_id"].astype(object).isin(courses_kept).to_numpy(bool)
        used = gone["section_id"].astype(object).isin(self.enrolled_sections).to_numpy(bool)
        keep = over | kept_course | used
        status = np.where(keep, KEEP, "deleted").astype(object)
        left = self._left("sections", gone["section_id"])
        reason = [
            f"{how} with its course, which Canvas keeps: kept"
            if k
            else f"{how} after its term ended: kept"
            if o
            else f"{how} before its term ended and had enrollments: kept, its enrollments completed"
            if u
            else f"{how} before its term ended, never had an enrollment: deleted"
            for k, o, u, how in zip(kept_course, over, used, left, strict=True)
        ]
        silent = self._carried("sections", gone["section_id"])
        harmful = (status == "deleted") | (~over & ~kept_course & ~silent)
        return Decisions(status, reason, harmful & ~silent, silent)

    def containers(self, name: str, gone: pd.DataFrame, in_use: set[str]) -> Decisions:
        """Terms and accounts: kept while a course (or an account) of ours is in them; Canvas
        refuses to delete a term with courses."""
        if gone.empty:
            return Decisions.empty()
        ids = gone[FILES_KEY[name]]
        used = ids.astype(object).isin(in_use).to_numpy(bool)
        status = np.where(used, KEEP, "deleted").astype(object)
        reason = [
            f"{how}; Canvas courses are still in it: kept" if u else f"{how}, empty: deleted"
            for u, how in zip(used, self._left(name, ids), strict=True)
        ]
        silent = self._carried(name, ids)
        return Decisions(status, reason, np.zeros(len(gone), bool), silent)

    def enrollments(
        self, gone: pd.DataFrame, courses_kept: set[str], sections_kept: set[str]
    ) -> Decisions:
        if gone.empty:
            return Decisions.empty()
        from .enrollments import INTERNAL

        ends = gone[INTERNAL] if INTERNAL in gone else pd.Series([None] * len(gone))
        over = ended(ends, self.night)
        with_course = gone["course_id"].astype(object).isin(courses_kept).to_numpy(bool) | gone[
            "section_id"
        ].astype(object).isin(sections_kept).to_numpy(bool)
        complete = over | with_course
        status = np.where(complete, "completed", "deleted").astype(object)
        reason = _pick(
            (over, "gone from the SIS after its term ended: completed, work kept"),
            (with_course, "its course or section left before the term ended: completed"),
            otherwise="gone from the SIS or the tenant's scope",
        )
        was = gone["status"].astype(object).to_numpy() if "status" in gone else status
        silent = was == status
        return Decisions(status, reason, ~over & ~silent, silent)

    def users(self, gone: pd.DataFrame, studying: set[str]) -> Decisions:
        """``studying``: users with an enrollment whose term has not ended; suspending one of
        them stops a student mid-term (harmful), a graduate's suspension does not."""
        if gone.empty:
            return Decisions.empty()
        status = np.full(len(gone), self.cfg.user_remove_status, dtype=object)
        mid_term = gone["user_id"].astype(object).isin(studying).to_numpy(bool)
        left = self._left("users", gone["user_id"])
        reason = list(
            left
            + np.where(mid_term, " during a term it was enrolled in", " after its last term ended")
        )
        was = gone["status"].astype(object).to_numpy() if "status" in gone else status
        silent = was == status
        harmful = ((status == "deleted") | mid_term) & ~silent
        return Decisions(status, reason, harmful, silent)

    def others(self, name: str, gone: pd.DataFrame) -> Decisions:
        n = len(gone)
        if not FILES[name].statuses:  # logins: Canvas only adds them
            return Decisions(
                np.full(n, KEEP, dtype=object),
                [f"kept: {name}.csv only adds (a login is removed with its user)"] * n,
                np.zeros(n, bool),
                np.zeros(n, bool),
            )
        was = gone["status"].astype(object).to_numpy() if "status" in gone else np.full(n, None)
        silent = was == "deleted"
        return Decisions(
            np.full(n, "deleted", dtype=object),
            ["gone from the SIS"] * n,
            np.zeros(n, bool),
            silent,
        )
