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

ASSIGNMENT_COLUMNS = {
    "course_id": "string",
    "assignment_id": "Int64",
    "name": "string",
    "description": "string",
    "points_possible": "Float64",
    "due_at": "string",
    "unlock_at": "string",
    "created_at": "string",
    "updated_at": "string",
    "group_name": "string",
    "submission_types": "string",
    "grading_type": "string",
    "published": "boolean",
    "post_to_sis": "boolean",
    "omit_from_final_grade": "boolean",
    "hide_in_gradebook": "boolean",
}
SUBMISSION_COLUMNS = {
    "course_id": "string",
    "assignment_id": "Int64",
    "user_id": "Int64",
    "score": "Float64",
    "excused": "boolean",
    "missing": "boolean",
    "late": "boolean",
    "workflow_state": "string",
    "graded_at": "string",
    "submitted_at": "string",
    "comment": "string",
}
STUDENT_COLUMNS = {
    "course_id": "string",
    "user_id": "Int64",
    "sis_user_id": "string",
    "sis_section_id": "string",
    "enrollment_state": "string",
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


class _Columns:
    """The three frames' columns, filled course by course: a district's gradebook is
    millions of submissions, held as columns rather than as a dict per row."""

    def __init__(self) -> None:
        self.parts = [
            {c: [] for c in spec}
            for spec in (ASSIGNMENT_COLUMNS, SUBMISSION_COLUMNS, STUDENT_COLUMNS)
        ]

    def add(self, rows: tuple[list[dict], list[dict], list[dict]]) -> None:
        for columns, part in zip(self.parts, rows, strict=True):
            for name, values in columns.items():
                values.extend(r[name] for r in part)

    def book(self) -> CanvasGradebook:
        a, s, e = (
            pd.DataFrame(columns).astype(spec)
            for columns, spec in zip(
                self.parts, (ASSIGNMENT_COLUMNS, SUBMISSION_COLUMNS, STUDENT_COLUMNS), strict=True
            )
        )
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
