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
) -> dict[str, list[dict[str, Any]]]:
    """``students``: sis_user_id -> sis_section_id of the course's active student enrollments."""
    work = assignments(course_id, term_start, term_end, clock)
    submissions = []
    totals: dict[str, list[float]] = {s: [0.0, 0.0] for s in students}
    for assignment in work:
        for student in students:
            sub = submission(assignment, student, clock)
            if sub is None:
                continue
            submissions.append(sub | {"_sis_user_id": student})
            if sub["score"] is not None:
                totals[student][0] += sub["score"]
                totals[student][1] += assignment["points_possible"]
    enrollments = []
    for student, section in students.items():
        got, possible = totals[student]
        current = round(100 * got / possible, 2) if possible else None
        enrollments.append(
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
                    "current_score": current,
                    "final_score": round(100 * got / possible, 2) if possible else 0.0,
                    "current_grade": None,
                    "final_grade": None,
                },
            }
        )
    return {
        "assignment_groups": assignment_groups(course_id),
        "assignments": work,
        "submissions": submissions,
        "enrollments": enrollments,
    }
