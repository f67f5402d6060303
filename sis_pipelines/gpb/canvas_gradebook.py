"""The Canvas gradebook of the courses we provisioned, read into columns.

Per course, whole: assignment groups with their assignments, the students' enrollments (which
carry the SIS user and section ids and the course grades) and every submission, a few courses
at a time: Canvas throttles per token, and fourteen requests in flight fill its bucket. A whole read
is what lets grade passback converge: a grade cleared, an assignment deleted or a course score
moved by a re-weighting leaves no trace in ``graded_since``; it shows only as a difference
between the whole gradebook and what we sent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import pandas as pd

from ..canvas.api import CanvasClient, CanvasError

# Text as Arrow strings: a district's gradebook is millions of submissions, and as Python
# strings its text took most of a night's memory.
TEXT = "string[pyarrow]"
ASSIGNMENT_COLUMNS = {
    "course_id": TEXT,
    "assignment_id": "Int64",
    "name": TEXT,
    "description": TEXT,
    "points_possible": "Float64",
    "due_at": TEXT,
    "unlock_at": TEXT,
    "created_at": TEXT,
    "updated_at": TEXT,
    "group_name": TEXT,
    "submission_types": TEXT,
    "grading_type": TEXT,
    "published": "boolean",
    "post_to_sis": "boolean",
    "omit_from_final_grade": "boolean",
    "hide_in_gradebook": "boolean",
}
SUBMISSION_COLUMNS = {
    "course_id": TEXT,
    "assignment_id": "Int64",
    "user_id": "Int64",
    "score": "Float64",
    "excused": "boolean",
    "missing": "boolean",
    "late": "boolean",
    "workflow_state": TEXT,
    "graded_at": TEXT,
    "submitted_at": TEXT,
    "comment": TEXT,
}
STUDENT_COLUMNS = {
    "course_id": TEXT,
    "user_id": "Int64",
    "sis_user_id": TEXT,
    "sis_section_id": TEXT,
    "enrollment_state": TEXT,
    "current_score": "Float64",
    "final_score": "Float64",
}


@dataclass
class CanvasGradebook:
    assignments: pd.DataFrame
    submissions: pd.DataFrame
    students: pd.DataFrame
    missing_courses: list[str]
    # The courses whose gradebook was read whole: what this pass may converge (and remove).
    courses: list[str] = field(default_factory=list)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {
            "assignments": self.assignments,
            "submissions": self.submissions,
            "students": self.students,
        }

    def of_courses(self, courses: list[str]) -> CanvasGradebook:
        """The part of the gradebook in these courses (of those read)."""
        wanted = set(courses)
        return CanvasGradebook(
            *(
                f[f["course_id"].isin(wanted)].reset_index(drop=True)
                for f in self.frames().values()
            ),
            missing_courses=[],
            courses=[c for c in self.courses if c in wanted],
        )


def course_rows(
    course_id: str,
    groups: Iterable[dict[str, Any]],
    assignments: Iterable[dict[str, Any]],
    submissions: Iterable[dict[str, Any]],
    enrollments: Iterable[dict[str, Any]],
) -> tuple[list[dict], list[dict], list[dict]]:
    """Canvas API JSON of one course, as rows of the three frames."""
    group_names = {g["id"]: g.get("name") for g in groups}
    a_rows = [
        {
            "course_id": course_id,
            "assignment_id": a["id"],
            "name": a.get("name"),
            "description": a.get("description"),
            "points_possible": a.get("points_possible"),
            "due_at": a.get("due_at"),
            "unlock_at": a.get("unlock_at"),
            "created_at": a.get("created_at"),
            "updated_at": a.get("updated_at"),
            "group_name": group_names.get(a.get("assignment_group_id")),
            "submission_types": ",".join(a.get("submission_types") or []),
            "grading_type": a.get("grading_type"),
            "published": a.get("published", a.get("workflow_state") == "published"),
            "post_to_sis": bool(a.get("post_to_sis")),
            "omit_from_final_grade": bool(a.get("omit_from_final_grade")),
            "hide_in_gradebook": bool(a.get("hide_in_gradebook")),
        }
        for a in assignments
    ]
    s_rows = [
        {
            "course_id": course_id,
            "assignment_id": s["assignment_id"],
            "user_id": s["user_id"],
            "score": s.get("score"),
            "excused": bool(s.get("excused")),
            "missing": bool(s.get("missing")),
            "late": bool(s.get("late")),
            "workflow_state": s.get("workflow_state"),
            "graded_at": s.get("graded_at"),
            "submitted_at": s.get("submitted_at"),
            "comment": _last_comment(s),
        }
        for s in submissions
    ]
    e_rows = [
        {
            "course_id": course_id,
            "user_id": e["user_id"],
            "sis_user_id": e.get("sis_user_id"),
            "sis_section_id": e.get("sis_section_id"),
            "enrollment_state": e.get("enrollment_state"),
            "current_score": (e.get("grades") or {}).get("current_score"),
            "final_score": (e.get("grades") or {}).get("final_score"),
        }
        for e in enrollments
        if e.get("type", "StudentEnrollment") == "StudentEnrollment"
    ]
    return a_rows, s_rows, e_rows


def _last_comment(submission: dict[str, Any]) -> str | None:
    comments = submission.get("submission_comments") or []
    return comments[-1].get("comment") if comments else None


# Rows gathered as Python values before they become Arrow-backed columns.
ROWS_PER_PART = 50_000
SPECS = (ASSIGNMENT_COLUMNS, SUBMISSION_COLUMNS, STUDENT_COLUMNS)


class _Columns:
    """The three frames' columns, filled course by course: a district's gradebook is
    millions of submissions, held as Arrow-backed parts rather than a Python value a cell
    (a part of ``ROWS_PER_PART`` rows at a time is Python)."""

    def __init__(self) -> None:
        self.rows = [{c: [] for c in spec} for spec in SPECS]
        self.parts: list[list[pd.DataFrame]] = [[] for _ in SPECS]

    def add(self, rows: tuple[list[dict], list[dict], list[dict]]) -> None:
        for i, (columns, part) in enumerate(zip(self.rows, rows, strict=True)):
            for name, values in columns.items():
                values.extend(r[name] for r in part)
            if len(columns["course_id"]) >= ROWS_PER_PART:
                self._close_part(i)

    def _close_part(self, i: int) -> None:
        self.parts[i].append(pd.DataFrame(self.rows[i]).astype(SPECS[i]))
        self.rows[i] = {c: [] for c in SPECS[i]}

    def book(self) -> CanvasGradebook:
        frames = []
        for i in range(len(SPECS)):
            self._close_part(i)
            parts = [p for p in self.parts[i] if len(p)] or self.parts[i][-1:]
            self.parts[i] = []
            frames.append(pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0])
        a, s, e = frames
        return CanvasGradebook(a, s, e, [])


def assemble(rows: Iterable[tuple[list[dict], list[dict], list[dict]]]) -> CanvasGradebook:
    columns = _Columns()
    for course in rows:
        columns.add(course)
    return columns.book()


def read_course(
    canvas: CanvasClient, course_id: str, passed_back: Collection[str], students: bool = True
) -> tuple[list[dict], list[dict], list[dict]] | Literal["missing"] | None:
    """One course's gradebook as rows; None when it has nothing to pass back (one request: a
    course without assignments); "missing" when Canvas does not know it. ``students``: read
    its students' enrollments too (not when the grade export brought them)."""
    base = f"/api/v1/courses/{quote('sis_course_id:' + course_id, safe=':')}"
    try:
        # The groups carry their assignments (include[]): one request, not two.
        groups = canvas.get_all(f"{base}/assignment_groups", {"include[]": "assignments"})
    except CanvasError as exc:
        if exc.status == 404:
            return "missing"
        raise
    assignments = [a for g in groups for a in g.get("assignments") or []]
    if not assignments and course_id not in passed_back:
        return None
    params: dict[str, Any] = {"student_ids[]": "all", "include[]": "submission_comments"}
    submissions = canvas.get_all(f"{base}/students/submissions", params) if assignments else []
    enrollments = (
        canvas.get_all(f"{base}/enrollments", {"type[]": "StudentEnrollment", "state[]": "active"})
        if students
        else []
    )
    return course_rows(course_id, groups, assignments, submissions, enrollments)


def read_gradebook(
    canvas: CanvasClient,
    course_ids: Iterable[str],
    passed_back: Collection[str] = (),
    concurrency: int = 1,
    discovery: str = "courses",
) -> CanvasGradebook:
    """Every provisioned course's gradebook; a course Canvas does not know is listed, not fatal.
    A course without assignments costs one request, unless we passed grades back from it
    (``passed_back``): then its students are read, so that what we sent can converge.
    ``concurrency`` courses are read at once: Canvas's bucket lets a token keep about
    fourteen requests in flight before it throttles. ``discovery="grade_export"`` reads only
    the courses the account's Grade Export report shows a score in, and those passed back."""
    from .grade_export import grade_export

    course_ids = list(course_ids)
    export = grade_export(canvas, passed_back) if discovery == "grade_export" else None
    if export is not None:
        course_ids = [c for c in course_ids if c in export.courses]
    columns = _Columns()
    read: list[Literal["missing", "read", "empty"]] = []
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="canvas-read") as pool:
        # In course order, each course's rows folded into the columns as it comes.
        for rows in pool.map(
            lambda c: read_course(canvas, c, passed_back, export is None), course_ids
        ):
            if isinstance(rows, tuple):
                columns.add(rows)
            read.append("read" if isinstance(rows, tuple) else rows or "empty")
    book = columns.book()
    book.missing_courses = [c for c, r in zip(course_ids, read, strict=True) if r == "missing"]
    book.courses = [c for c, r in zip(course_ids, read, strict=True) if r != "missing"]
    if export is not None:
        # The report's rows of the courses read with assignments (or passed back), as the
        # enrollments of those courses would have given them.
        listed = {c for c, r in zip(course_ids, read, strict=True) if r == "read"}
        students = export.students
        book.students = students[students["course_id"].isin(listed)].reset_index(drop=True)
    return book
