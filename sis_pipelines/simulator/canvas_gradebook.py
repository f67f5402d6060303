"""The gradebooks the Canvas simulator shows: assignment groups, assignments (graded
assignments, quizzes and discussions), submissions and enrollment grades of the courses
Canvas holds, changing night by night as teachers grade.

Everything is a pure function of the course, its students and the simulator's clock, so a
night's gradebook is the same whenever it is asked for.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

# Assignment groups as teachers name them; "Extra Credit" matches no SIS category.
GROUPS = ("Homework", "Quizzes", "Tests", "Extra Credit")
# (group, submission type, points) of the k-th assignment of a course, in rotation.
ROTATION = (
    (0, "online_upload", 10.0),
    (1, "online_quiz", 20.0),
    (0, "discussion_topic", 5.0),
    (2, "on_paper", 100.0),
    (3, "online_upload", 5.0),
)
CADENCE_DAYS = 14
GRADING_LAG_DAYS = 1  # teachers grade over the 1 to 4 days after the due date
GRADEBOOK_SHARE = 40  # one course in this many passes grades back from Canvas


def stable(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def canvas_id(kind: str, key: str) -> int:
    """A Canvas numeric id for an SIS-keyed object, stable across nights and processes."""
    return 10_000_000 + stable(kind, key) % 89_999_999


def uses_gradebook(course_id: str, share: int = GRADEBOOK_SHARE) -> bool:
    return share <= 1 or stable("gradebook", course_id) % share == 0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(value: str | None, default: date) -> date:
    try:
        return date.fromisoformat((value or "")[:10])
    except ValueError:
        return default


def assignment_groups(course_id: str) -> list[dict[str, Any]]:
    return [
        {
            "id": canvas_id("group", f"{course_id}|{name}"),
            "name": name,
            "position": i + 1,
            "group_weight": 0.0,
            "sis_source_id": None,
            "integration_data": {},
            "rules": {},
        }
        for i, name in enumerate(GROUPS)
    ]


def assignments(
    course_id: str, term_start: str | None, term_end: str | None, clock: datetime
) -> list[dict[str, Any]]:
    """The assignments teachers have created by ``clock``: one every two weeks of the term."""
    start = _day(term_start, date(clock.year if clock.month >= 8 else clock.year - 1, 8, 15))
    end = _day(term_end, start + timedelta(days=150))
    course_num = canvas_id("course", course_id)
    groups = assignment_groups(course_id)
    out = []
    k = 0
    while True:
        # Courses are spread over the whole cadence, so that some grading happens every night.
        due_day = start + timedelta(
            days=CADENCE_DAYS * k + 1 + stable("due", course_id) % CADENCE_DAYS
        )
        due = datetime.combine(due_day, time(23, 59), UTC)
        created = due - timedelta(days=7)
        if due_day > end or created > clock:
            break
        group, submission_type, points = ROTATION[k % len(ROTATION)]
        kind = {"online_quiz": "Quiz", "discussion_topic": "Discussion"}.get(
            submission_type, "Assignment"
        )
        out.append(
            {
                "id": course_num * 100 + k,
                "course_id": course_num,
                "name": f"{kind} {k + 1}",
                "description": f"<p>{kind} {k + 1} of the course</p>",
                "points_possible": points,
                "due_at": _iso(due),
                "unlock_at": _iso(created),
                "created_at": _iso(created),
                "updated_at": _iso(created),
                "assignment_group_id": groups[group]["id"],
                "grading_type": "points",
                "submission_types": [submission_type],
                "published": True,
                "workflow_state": "published",
                "omit_from_final_grade": False,
                "hide_in_gradebook": False,
                "post_to_sis": k % 4 != 3,
                "is_quiz_assignment": submission_type == "online_quiz",
                "sis_assignment_id": None,
                "integration_id": None,
            }
        )
        k += 1
    return out


def submission(assignment: dict[str, Any], student: str, clock: datetime) -> dict[str, Any] | None:
    """A student's submission as it stands at ``clock``; None while there is nothing to see."""
    due = datetime.fromisoformat(assignment["due_at"].replace("Z", "+00:00"))
    h = stable("submission", assignment["id"], student)
    lag = GRADING_LAG_DAYS + h % 4 + (h // 7 % 20 if h % 9 == 0 else 0)  # some grades come late
    graded_at = due + timedelta(days=lag, hours=9 + h % 8, minutes=h % 60)
    submitted_at = due - timedelta(hours=1 + h % 40)
    base = {
        "assignment_id": assignment["id"],
        "user_id": canvas_id("user", student),
        "id": canvas_id("submission", f"{assignment['id']}|{student}"),
        "attempt": 1,
        "late": False,
        "missing": False,
        "excused": False,
        "late_policy_status": None,
        "grade_matches_current_submission": True,
        "posted_at": None,
        "grader_id": None,
    }
    if submitted_at > clock:
        return None
    points = assignment["points_possible"]
    if h % 50 == 0:  # excused
        if graded_at > clock:
            return None
        return base | {
            "excused": True,
            "workflow_state": "graded",
            "score": None,
            "grade": None,
            "entered_score": None,
            "graded_at": _iso(graded_at),
            "submitted_at": None,
        }
    if h % 50 in (1, 2, 3):  # never turned in
        if due > clock:
            return None
        return base | {
            "missing": True,
            "late_policy_status": "missing",
            "workflow_state": "unsubmitted",
            "score": None,
            "grade": None,
            "graded_at": None,
            "submitted_at": None,
        }
    if graded_at > clock:
        return base | {
            "workflow_state": "submitted",
            "score": None,
            "grade": None,
            "graded_at": None,
            "submitted_at": _iso(submitted_at),
        }
    score = round(points * (0.55 + (h % 46) / 100), 1)
    regrade_day = graded_at + timedelta(days=5 + h % 40)
    if h % 13 == 0 and regrade_day <= clock:  # regraded later, after a resubmission
        score = min(points, round(score + points * 0.1, 1))
        graded_at = regrade_day
    comments = [{"comment": "Well argued; see my notes.", "author_id": 1}] if h % 7 == 0 else []
    return base | {
        "submission_comments": comments,
        "workflow_state": "graded",
        "score": score,
        "grade": f"{score:g}",
        "entered_score": score,
        "graded_at": _iso(graded_at),
        "posted_at": _iso(graded_at),
        "submitted_at": _iso(submitted_at),
    }


def course_gradebook(
    course_id: str,
    students: dict[str, str],
    term_start: str | None,
    term_end: str | None,
    clock: datetime,
    edits: list[dict[str, Any]] = (),  # type: ignore[assignment]
    generated: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """``students``: sis_user_id -> sis_section_id of the course's active student enrollments;
    ``edits``: what teachers did through the API (see ``canvas_edits``), applied up to ``clock``."""
    groups = assignment_groups(course_id)
    work = assignments(course_id, term_start, term_end, clock) if generated else []
    submissions = []
    for assignment in work:
        for student in students:
            sub = submission(assignment, student, clock)
            if sub is not None:
                submissions.append(sub | {"_sis_user_id": student})
    book = {"assignment_groups": groups, "assignments": work, "submissions": submissions}
    applied = [e for e in edits if e["at"] <= _iso(clock)]
    events = grade_change_events(book, course_id, applied)
    weighted = apply_edits(book, course_id, students, applied)
    book["events"] = events
    scores = course_scores(book, students, weighted)
    book["enrollments"] = [
        {
            "id": canvas_id("enrollment", f"{course_id}|{student}"),
            "course_id": canvas_id("course", course_id),
            "user_id": canvas_id("user", student),
            "sis_user_id": student,
            "sis_course_id": course_id,
            "sis_section_id": section,
            "course_section_id": canvas_id("section", section),
            "type": "StudentEnrollment",
            "role": "StudentEnrollment",
            "enrollment_state": "active",
            "grades": {
                "current_score": scores[student][0],
                "final_score": scores[student][1],
                "current_grade": None,
                "final_grade": None,
            },
        }
        for student, section in students.items()
    ]
    return book


def apply_edits(
    book: dict[str, list[dict[str, Any]]],
    course_id: str,
    students: dict[str, str],
    edits: list[dict[str, Any]],
) -> bool:
    """Teachers' edits in order: assignments created, changed, unpublished or deleted, grades
    entered, cleared or excused, group weights. Whether the course weights its groups."""
    weighted = False
    by_id = {a["id"]: a for a in book["assignments"]}
    subs = {(s["assignment_id"], s["_sis_user_id"]): s for s in book["submissions"]}
    groups = {g["id"]: g for g in book["assignment_groups"]}
    for edit in edits:
        op = edit["op"]
        if op == "assignment":
            aid = edit["assignment_id"]
            current = by_id.get(aid) or new_assignment(course_id, aid, edit["at"])
            current.update(edit["fields"])
            current["updated_at"] = edit["at"]
            current["published"] = current.get("workflow_state", "published") == "published"
            by_id[aid] = current
        elif op == "grade":
            key = (edit["assignment_id"], edit["student"])
            if edit["assignment_id"] not in by_id or edit["student"] not in students:
                continue
            subs[key] = graded(subs.get(key), edit, students)
        elif op == "group" and edit["group_id"] in groups:
            groups[edit["group_id"]]["group_weight"] = edit["group_weight"]
        elif op == "course":
            weighted = bool(edit["apply_assignment_group_weights"])
    live = {aid: a for aid, a in by_id.items() if a.get("workflow_state") != "deleted"}
    book["assignments"] = sorted(live.values(), key=lambda a: a["id"])
    book["submissions"] = [s for (aid, _), s in sorted(subs.items()) if aid in live]
    return weighted


def new_assignment(course_id: str, assignment_id: int, at: str) -> dict[str, Any]:
    """An assignment a teacher creates through the API, before its own fields are applied."""
    return {
        "id": assignment_id,
        "course_id": canvas_id("course", course_id),
        "name": f"Assignment {assignment_id}",
        "description": None,
        "points_possible": 10.0,
        "due_at": None,
        "unlock_at": None,
        "created_at": at,
        "updated_at": at,
        "assignment_group_id": assignment_groups(course_id)[0]["id"],
        "grading_type": "points",
        "submission_types": ["online_upload"],
        "published": True,
        "workflow_state": "published",
        "omit_from_final_grade": False,
        "hide_in_gradebook": False,
        "post_to_sis": True,
        "is_quiz_assignment": False,
        "sis_assignment_id": None,
        "integration_id": None,
    }


def graded(
    before: dict[str, Any] | None, edit: dict[str, Any], students: dict[str, str]
) -> dict[str, Any]:
    """A submission after a teacher's grading edit: a score, a cleared grade (score None),
    excused, or a missing/late mark."""
    student = edit["student"]
    sub = (
        dict(before)
        if before
        else {
            "assignment_id": edit["assignment_id"],
            "user_id": canvas_id("user", student),
            "id": canvas_id("submission", f"{edit['assignment_id']}|{student}"),
            "attempt": None,
            "late": False,
            "missing": False,
            "excused": False,
            "late_policy_status": None,
            "grade_matches_current_submission": True,
            "submitted_at": None,
            "submission_comments": [],
            "workflow_state": "unsubmitted",
            "score": None,
            "grade": None,
            "graded_at": None,
            "posted_at": None,
            "_sis_user_id": student,
        }
    )
    if "score" in edit:
        score = edit["score"]
        sub |= {
            "score": score,
            "grade": None if score is None else f"{score:g}",
            "entered_score": score,
            "excused": False,
            "workflow_state": "graded"
            if score is not None
            else ("submitted" if sub.get("submitted_at") else "unsubmitted"),
            "graded_at": edit["at"] if score is not None else sub.get("graded_at"),
            "posted_at": edit["at"] if score is not None else None,
            "grader_id": edit.get("grader_id"),
        }
    if edit.get("excused") is not None:
        excused = bool(edit["excused"])
        sub |= {"excused": excused, "grader_id": edit.get("grader_id")}
        if excused:
            sub |= {
                "score": None,
                "grade": None,
                "workflow_state": "graded",
                "graded_at": edit["at"],
            }
    for mark in ("missing", "late"):
        if edit.get(mark) is not None:
            sub[mark] = bool(edit[mark])
            sub["late_policy_status"] = mark if edit[mark] else None
    return sub


def counts(assignment: dict[str, Any]) -> bool:
    return (
        assignment.get("published", True)
        and not assignment.get("omit_from_final_grade")
        and (assignment.get("points_possible") or 0) > 0
    )


def course_scores(
    book: dict[str, list[dict[str, Any]]], students: dict[str, str], weighted: bool
) -> dict[str, tuple[float | None, float]]:
    """Canvas's current score (graded work only) and final score (ungraded as zero), per
    student: by assignment group weights when the course applies them."""
    work = {a["id"]: a for a in book["assignments"] if counts(a)}
    weights = {g["id"]: g.get("group_weight") or 0.0 for g in book["assignment_groups"]}
    by_student: dict[str, dict[Any, list[float]]] = {s: {} for s in students}
    for sub in book["submissions"]:
        a = work.get(sub["assignment_id"])
        if a is None or sub.get("excused") or sub["_sis_user_id"] not in by_student:
            continue
        cell = by_student[sub["_sis_user_id"]].setdefault(a["assignment_group_id"], [0.0, 0.0])
        if sub.get("score") is not None:
            cell[0] += sub["score"]
            cell[1] += a["points_possible"]
    possible_all: dict[Any, float] = {}
    for a in work.values():
        possible_all[a["assignment_group_id"]] = (
            possible_all.get(a["assignment_group_id"], 0.0) + a["points_possible"]
        )
    out: dict[str, tuple[float | None, float]] = {}
    for student, cells in by_student.items():
        current = _combine(
            {g: (got, possible) for g, (got, possible) in cells.items()}, weights, weighted
        )
        final = _combine(
            {g: (cells.get(g, [0.0, 0.0])[0], p) for g, p in possible_all.items()},
            weights,
            weighted,
        )
        out[student] = (current, final if final is not None else 0.0)
    return out


def _combine(
    cells: dict[Any, tuple[float, float]], weights: dict[Any, float], weighted: bool
) -> float | None:
    cells = {g: c for g, c in cells.items() if c[1] > 0}
    if not cells:
        return None
    if not weighted:
        return round(100 * sum(c[0] for c in cells.values()) / sum(c[1] for c in cells.values()), 2)
    total = sum(weights.get(g, 0.0) for g in cells)
    if total <= 0:
        return None
    return round(sum(weights.get(g, 0.0) * c[0] / c[1] for g, c in cells.items()) * 100 / total, 2)


def grade_change_events(
    book: dict[str, list[dict[str, Any]]], course_id: str, edits: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The course's Grade Change Log, oldest first: a grading event per graded submission of
    the generated gradebook (before the edits), and one per teacher's grading edit."""
    events = []
    course_num = canvas_id("course", course_id)
    for sub in book["submissions"]:
        if sub.get("graded_at") and sub.get("score") is not None:
            events.append(
                _event(
                    course_num,
                    sub["assignment_id"],
                    sub["user_id"],
                    sub["graded_at"],
                    None,
                    sub["grade"],
                    False,
                )
            )
    for edit in edits:
        if edit["op"] == "grade" and ("score" in edit or edit.get("excused") is not None):
            score = edit.get("score")
            events.append(
                _event(
                    course_num,
                    edit["assignment_id"],
                    canvas_id("user", edit["student"]),
                    edit["at"],
                    edit.get("grade_before"),
                    None if score is None else f"{score:g}",
                    bool(edit.get("excused")),
                    edit.get("grader_id"),
                )
            )
    return sorted(events, key=lambda e: (e["created_at"], e["id"]))


def _event(
    course: int,
    assignment: int,
    student: int,
    at: str,
    before: str | None,
    after: str | None,
    excused: bool,
    grader: int | None = None,
) -> dict[str, Any]:
    return {
        "id": str(stable("event", assignment, student, at)),
        "created_at": at,
        "event_type": "grade_change",
        "excused_before": False,
        "excused_after": excused,
        "grade_before": before,
        "grade_after": after,
        "graded_anonymously": False,
        "version_number": 1,
        "request_id": str(stable("request", assignment, student, at)),
        "links": {
            "assignment": assignment,
            "course": course,
            "student": student,
            "grader": grader,
            "page_view": None,
        },
    }
