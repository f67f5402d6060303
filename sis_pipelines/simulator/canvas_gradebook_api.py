"""The Canvas simulator's gradebook routes, in Canvas's own shapes: the reads grade passback
makes (assignment groups, assignments, submissions, enrollments), the Grade Change Log, and
what a teacher does (grade a submission, change, create or delete an assignment, weight the
assignment groups). Courses are addressed as ``sis_course_id:<id>``, as the pipeline does."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode

from .canvas_gradebook import canvas_id

if TYPE_CHECKING:
    from .canvas import CanvasSimulator

Answer = tuple[int, Any, str | None]  # status, JSON body, Link header
NOT_FOUND: Answer = (404, {"errors": [{"message": "The specified resource does not exist."}]}, None)
ASSIGNMENT_FIELDS = {
    "name": str,
    "points_possible": float,
    "due_at": str,
    "published": bool,
    "omit_from_final_grade": bool,
    "assignment_group_id": int,
    "post_to_sis": bool,
    "grading_type": str,
}


def page(
    url: str, items: list[dict[str, Any]], query: dict[str, list[str]]
) -> tuple[list[dict[str, Any]], str]:
    """Canvas pagination: ``per_page`` (at most 100) and ``page``, with a Link header."""
    per_page = min(100, max(1, int((query.get("per_page") or ["10"])[0])))
    number = max(1, int((query.get("page") or ["1"])[0]))
    chunk = items[(number - 1) * per_page : number * per_page]

    def link(n: int, rel: str) -> str:
        params = {k: v for k, v in query.items() if k not in ("page", "per_page")}
        params |= {"page": [str(n)], "per_page": [str(per_page)]}
        return f'<{url}?{urlencode(params, doseq=True)}>; rel="{rel}"'

    links = [link(number, "current"), link(1, "first")]
    if number * per_page < len(items):
        links.append(link(number + 1, "next"))
    return chunk, ",".join(links)


def _course(parts: list[str], at: int) -> str | None:
    ref = unquote(parts[at]) if len(parts) > at else ""
    return ref.removeprefix("sis_course_id:") if ref.startswith("sis_course_id:") else None


def read(
    sim: CanvasSimulator, parts: list[str], query: dict[str, list[str]], url: str
) -> Answer | None:
    if parts[:5] == ["api", "v1", "audit", "grade_change", "courses"] and len(parts) == 6:
        return grade_change_log(sim, parts, query, url)
    if parts[:3] != ["api", "v1", "courses"] or len(parts) < 5:
        return None
    course_id = _course(parts, 3)
    book = sim.gradebook(course_id) if course_id else None
    if book is None:
        return None
    rest = "/".join(parts[4:])
    if rest == "assignment_groups":
        items = book["assignment_groups"]
        if "assignments" in query.get("include[]", []):
            items = [
                {
                    **g,
                    "assignments": [
                        a for a in book["assignments"] if a.get("assignment_group_id") == g["id"]
                    ],
                }
                for g in items
            ]
    elif rest == "assignments":
        items = book["assignments"]
    elif rest == "students/submissions":
        since = (query.get("graded_since") or [None])[0]
        items = [
            _public(s)
            for s in book["submissions"]
            if since is None or (s.get("graded_at") is not None and s["graded_at"] >= since)
        ]
    elif rest == "enrollments":
        items = book["enrollments"]
    else:
        return None
    chunk, link = page(url, items, query)
    return 200, chunk, link


def grade_change_log(
    sim: CanvasSimulator, parts: list[str], query: dict[str, list[str]], url: str
) -> Answer:
    """``GET /api/v1/audit/grade_change/courses/:course_id``: the course's grade change
    events newest first, between ``start_time`` and ``end_time``, with the linked objects."""
    course_id = _course(parts, 5)
    book = sim.gradebook(course_id) if course_id else None
    if book is None:
        return NOT_FOUND
    start = _utc((query.get("start_time") or [""])[0])
    end = _utc((query.get("end_time") or [""])[0])
    events = [
        e
        for e in reversed(book["events"])
        if (not start or e["created_at"] >= start) and (not end or e["created_at"] <= end)
    ]
    chunk, link = page(url, events, query)
    assignments = {a["id"]: a for a in book["assignments"]}
    students = {e["user_id"]: e for e in book["enrollments"]}
    linked = {
        "assignments": [
            assignments[i] for i in {e["links"]["assignment"] for e in chunk} if i in assignments
        ],
        "courses": [{"id": e["links"]["course"], "sis_course_id": course_id} for e in chunk[:1]],
        "students": [
            {"id": i, "sis_user_id": students[i]["sis_user_id"]}
            for i in {e["links"]["student"] for e in chunk}
            if i in students
        ],
    }
    return 200, {"events": chunk, "linked": linked}, link


def _utc(value: str) -> str:
    """An ISO 8601 parameter as the log's own ``...Z`` stamps, for comparing."""
    if not value:
        return ""
    value = value.replace("+00:00", "Z")
    return value if value.endswith("Z") else value + "Z"


def write(
    sim: CanvasSimulator, method: str, parts: list[str], form: dict[str, str]
) -> Answer | None:
    """A teacher's edit, as Canvas's API takes it (form fields like ``submission[posted_grade]``)."""
    if parts[:3] != ["api", "v1", "courses"] or len(parts) < 4:
        return None
    course_id = _course(parts, 3)
    if course_id is None or sim.gradebook(course_id, sim.edit_moment()) is None:
        return NOT_FOUND
    rest = parts[4:]
    if method == "PUT" and not rest:
        value = form.get("course[apply_assignment_group_weights]")
        if value is None:
            return _bad("course[apply_assignment_group_weights] is required")
        sim.teacher_edit(course_id, "course", apply_assignment_group_weights=_bool(value))
        return (
            200,
            {"sis_course_id": course_id, "apply_assignment_group_weights": _bool(value)},
            None,
        )
    if method == "PUT" and len(rest) == 2 and rest[0] == "assignment_groups":
        weight = form.get("group_weight")
        if weight is None or not rest[1].isdigit():
            return _bad("group_weight is required")
        sim.teacher_edit(course_id, "group", group_id=int(rest[1]), group_weight=float(weight))
        return 200, {"id": int(rest[1]), "group_weight": float(weight)}, None
    if rest[:1] != ["assignments"]:
        return None
    if method == "POST" and len(rest) == 1:
        assignment_id = canvas_assignment_id(sim, course_id)
        return _assignment_edit(sim, course_id, assignment_id, form, created=True)
    if len(rest) < 2 or not rest[1].isdigit():
        return NOT_FOUND
    assignment_id = int(rest[1])
    book = sim.gradebook(course_id, sim.edit_moment()) or {}
    if not any(a["id"] == assignment_id for a in book.get("assignments", [])):
        return NOT_FOUND
    if method == "DELETE" and len(rest) == 2:
        sim.teacher_edit(
            course_id,
            "assignment",
            assignment_id=assignment_id,
            fields={"workflow_state": "deleted"},
        )
        return 200, {"id": assignment_id, "workflow_state": "deleted"}, None
    if method == "PUT" and len(rest) == 2:
        return _assignment_edit(sim, course_id, assignment_id, form, created=False)
    if method == "PUT" and len(rest) == 4 and rest[2] == "submissions":
        return grade(sim, course_id, assignment_id, unquote(rest[3]), form)
    return None


def canvas_assignment_id(sim: CanvasSimulator, course_id: str) -> int:
    made = sum(
        1 for e in sim.edits.for_course(course_id) if e["op"] == "assignment" and e.get("created")
    )
    return canvas_id("course", course_id) * 100 + 60 + made


def _assignment_edit(
    sim: CanvasSimulator, course_id: str, assignment_id: int, form: dict[str, str], created: bool
) -> Answer:
    fields: dict[str, Any] = {}
    for name, kind in ASSIGNMENT_FIELDS.items():
        value = form.get(f"assignment[{name}]")
        if value is None:
            continue
        try:
            fields[name] = _bool(value) if kind is bool else kind(value) if value != "" else None
        except ValueError:
            return _bad(f"assignment[{name}] {value!r} is not valid")
    if "published" in fields:
        fields["workflow_state"] = "published" if fields.pop("published") else "unpublished"
    sim.teacher_edit(
        course_id, "assignment", assignment_id=assignment_id, fields=fields, created=created
    )
    book = sim.gradebook(course_id, sim.edit_moment()) or {}
    found = next((a for a in book.get("assignments", []) if a["id"] == assignment_id), None)
    return (201 if created else 200), found or {"id": assignment_id, **fields}, None


def grade(
    sim: CanvasSimulator, course_id: str, assignment_id: int, user_ref: str, form: dict[str, str]
) -> Answer:
    """``PUT …/submissions/:user_id``: ``submission[posted_grade]`` (points, ``85%``, or empty
    to clear), ``submission[excuse]``, ``submission[late_policy_status]``."""
    student = sim.student_of(course_id, user_ref)
    if student is None:
        return NOT_FOUND
    book = sim.gradebook(course_id, sim.edit_moment()) or {}
    assignment = next(a for a in book["assignments"] if a["id"] == assignment_id)
    before = next(
        (
            s
            for s in book["submissions"]
            if s["assignment_id"] == assignment_id and s["_sis_user_id"] == student
        ),
        None,
    )
    edit: dict[str, Any] = {"assignment_id": assignment_id, "student": student, "grader_id": 1}
    if before is not None and before.get("grade") is not None:
        edit["grade_before"] = before["grade"]
    if "submission[posted_grade]" in form:
        posted = form["submission[posted_grade]"].strip()
        try:
            edit["score"] = _points(posted, assignment.get("points_possible") or 0.0)
        except ValueError:
            return _bad(f"submission[posted_grade] {posted!r} is not a grade")
    if "submission[excuse]" in form:
        edit["excused"] = _bool(form["submission[excuse]"])
    status = form.get("submission[late_policy_status]")
    if status is not None:
        edit["missing"] = status == "missing"
        edit["late"] = status == "late"
    if len(edit) == 3 + ("grade_before" in edit):
        return _bad(
            "nothing to change: give submission[posted_grade], [excuse] or [late_policy_status]"
        )
    sim.teacher_edit(course_id, "grade", **edit)
    book = sim.gradebook(course_id, sim.edit_moment()) or {}
    after = next(
        s
        for s in book["submissions"]
        if s["assignment_id"] == assignment_id and s["_sis_user_id"] == student
    )
    return 200, _public(after), None


def _points(posted: str, possible: float) -> float | None:
    if posted == "":
        return None
    if posted.endswith("%"):
        return round(float(posted[:-1]) * possible / 100, 2)
    if re.fullmatch(r"-?\d+(\.\d+)?", posted):
        return float(posted)
    raise ValueError(posted)


def _bool(value: str) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def _bad(message: str) -> Answer:
    return 400, {"errors": [{"message": message}]}, None


def _public(submission: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in submission.items() if not k.startswith("_")}
