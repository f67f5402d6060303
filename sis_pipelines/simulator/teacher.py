"""A teacher at work in a tenant's simulated Canvas, through Canvas's own API (the demo's
second night, and ``python -m sis_pipelines.simulator grade``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import httpx

from .canvas import CanvasSimulator

WEIGHTS = {"Homework": 20.0, "Quizzes": 30.0, "Tests": 50.0, "Extra Credit": 0.0}


@dataclass
class TeacherDay:
    course: str
    did: list[str] = field(default_factory=list)


def _client(sim: CanvasSimulator) -> httpx.Client:
    return httpx.Client(
        base_url=sim.base_url, headers={"Authorization": f"Bearer {sim.token}"}, timeout=30
    )


def _course(path: str) -> str:
    return f"/api/v1/courses/sis_course_id:{path}"


def a_course_with_grades(sim: CanvasSimulator, at: datetime) -> str | None:
    """The first course (by SIS id) whose gradebook has three assignments and a graded one."""
    for course_id in sorted(sim.state["courses"]):
        book = sim.gradebook(course_id, at)
        if book and len(book["assignments"]) >= 3 and any(s["score"] for s in book["submissions"]):
            return course_id
    return None


def a_day_of_edits(sim: CanvasSimulator, at: datetime) -> TeacherDay | None:
    """At ``at``, in one course: an assignment deleted, the assignment groups weighted, a
    grade cleared. What a nightly pass must converge to."""
    course_id = a_course_with_grades(sim, at)
    if course_id is None:
        return None
    sim.edit_clock = at
    day = TeacherDay(course_id)
    try:
        book = sim.gradebook(course_id, at)
        assert book is not None
        with _client(sim) as http:
            first, second = book["assignments"][0], book["assignments"][1]
            http.delete(f"{_course(course_id)}/assignments/{first['id']}").raise_for_status()
            day.did.append(f"deleted {first['name']!r}")
            for group in book["assignment_groups"]:
                http.put(
                    f"{_course(course_id)}/assignment_groups/{group['id']}",
                    data={"group_weight": str(WEIGHTS.get(group["name"], 0.0))},
                ).raise_for_status()
            http.put(
                _course(course_id), data={"course[apply_assignment_group_weights]": "true"}
            ).raise_for_status()
            day.did.append(
                "weighted the assignment groups (Homework 20 %, Quizzes 30 %, Tests 50 %)"
            )
            graded = next(
                (
                    s
                    for s in book["submissions"]
                    if s["assignment_id"] == second["id"] and s["score"]
                ),
                None,
            )
            if graded is not None:
                grade(sim, course_id, second["id"], graded["_sis_user_id"], "", http)
                day.did.append(f"cleared {graded['_sis_user_id']}'s grade of {second['name']!r}")
    finally:
        sim.edit_clock = None
    return day


def grade(
    sim: CanvasSimulator,
    course_id: str,
    assignment_id: int,
    sis_user_id: str,
    posted_grade: str,
    http: httpx.Client | None = None,
) -> dict:
    """``PUT /api/v1/courses/:course_id/assignments/:assignment_id/submissions/:user_id``
    with ``submission[posted_grade]``, as a teacher's gradebook does."""
    own = http is None
    http = http or _client(sim)
    try:
        response = http.put(
            f"{_course(course_id)}/assignments/{assignment_id}/submissions/sis_user_id:{sis_user_id}",
            data={"submission[posted_grade]": posted_grade},
        )
        response.raise_for_status()
        return response.json()
    finally:
        if own:
            http.close()
