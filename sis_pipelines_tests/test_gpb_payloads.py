"""Grade passback payloads: Canvas gradebook to OneRoster categories, lineItems and results."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from urllib.parse import urlsplit

import jsonschema
import pandas as pd
import pytest

from sis_pipelines.gpb.canvas_gradebook import assemble, course_rows
from sis_pipelines.gpb.payloads import SisState, body_hash, build, counting, score_status

from .gpb_world import CLASSES, NIGHT, SESSIONS, canvas_book, settings, tenant
from .gradebook_1p2_schema import BODIES
from .realdata import EDULINQ

GLOBAL = [
    {"sourcedId": "cat-hw", "status": "active", "title": "Homework"},
    {"sourcedId": "cat-quiz", "status": "active", "title": "Quizzes"},
    {"sourcedId": "cat-test", "status": "active", "title": "Tests"},
]

checker = jsonschema.FormatChecker(formats=())


@checker.checks("date-time")
def _date_time(value: object) -> bool:
    return isinstance(value, str) and bool(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value)
    )


@checker.checks("date")
def _date(value: object) -> bool:
    try:
        date.fromisoformat(str(value))
        return len(str(value)) == 10
    except ValueError:
        return False


@checker.checks("uri")
def _uri(value: object) -> bool:
    parts = urlsplit(str(value))
    return bool(parts.scheme and parts.netloc)


def by_kind(requests: list[dict], kind: str) -> list[dict]:
    return [r for r in requests if r["kind"] == kind]


def test_score_status_follows_the_canvas_submission_state():
    subs = pd.DataFrame(
        {
            "score": [9.0, None, None, None, None, 3.0],
            "workflow_state": [
                "graded",
                "graded",
                "unsubmitted",
                "submitted",
                "unsubmitted",
                "graded",
            ],
            "excused": [False, True, False, False, False, False],
            "missing": [False, False, True, False, False, True],
        }
    )
    assert score_status(subs).tolist() == [
        "fully graded",
        "exempt",
        "not submitted",
        "submitted",
        pd.NA,  # nothing happened yet: nothing to send
        "fully graded",  # marked missing but graded: the grade wins
    ]


def test_standard_payloads_are_ordered_and_complete():
    book = canvas_book()
    t = tenant(default_category="Homework")
    out = build(book, CLASSES, SESSIONS, SisState(categories=GLOBAL), {}, settings(t), NIGHT)
    requests = out.requests
    # Per class, every lineItem comes before any result that names it.
    seen: set[str] = set()
    for r in requests:
        if r["kind"] == "lineItem":
            seen.add(r["key"])
        elif r["kind"] == "result":
            assert r["line_item_key"] in seen
    items = by_kind(requests, "lineItem")
    counted = counting(book.assignments, False)
    assert (
        len([i for i in items if i["key"].startswith("a:")]) == len(counted) * 1
    )  # one class per course
    assert {i["key"] for i in items if i["key"].startswith("cg:")} == {"cg:c1", "cg:c2"}
    li = items[0]["body"]["lineItem"]
    assert items[0]["path"] == f"/lineItems/{li['sourcedId']}"
    assert li["class"]["sourcedId"] in ("c1", "c2")
    assert li["category"]["sourcedId"] in {"cat-hw", "cat-quiz", "cat-test"}
    assert li["resultValueMax"] > 0
    # "Extra Credit" matches no SIS category and went to the default one.
    groups = dict(
        zip(
            book.assignments["assignment_id"].astype(int),
            book.assignments["group_name"],
            strict=True,
        )
    )
    extra = [
        i["body"]["lineItem"]["category"]["sourcedId"]
        for i in items
        if i["key"].startswith("a:") and groups[int(i["key"].split(":")[1])] == "Extra Credit"
    ]
    assert extra and set(extra) == {"cat-hw"}
    results = by_kind(requests, "result")
    statuses = {r["body"]["result"]["scoreStatus"] for r in results}
    assert {"fully graded", "not submitted"} <= statuses
    graded = [
        r["body"]["result"] for r in results if r["body"]["result"]["scoreStatus"] == "fully graded"
    ]
    assert all("score" in g and len(g["scoreDate"]) == 10 for g in graded)
    assert all(not r["body"]["result"]["student"]["sourcedId"].startswith("p-") for r in results)
    assert out.report.empty


def test_unmatched_groups_are_reported_not_sent():
    book = canvas_book()
    out = build(book, CLASSES, SESSIONS, SisState(categories=GLOBAL), {}, settings(tenant()), NIGHT)
    items = [r for r in by_kind(out.requests, "lineItem") if r["key"].startswith("a:")]
    assert items and all(r["body"]["lineItem"]["category"]["sourcedId"] for r in items)
    # 1.1 makes the category optional: the course grade goes without one when none is named.
    assert all(
        "category" not in r["body"]["lineItem"]
        for r in by_kind(out.requests, "lineItem")
        if r["key"].startswith("cg:")
    )
    reasons = out.report["reason"].tolist()
    assert any("'Extra Credit' matches no SIS category" in r for r in reasons)
    assert set(out.report["class"].dropna()) <= {"c1", "c2"}


def test_class_categories_come_before_global_ones_and_can_be_created():
    book = canvas_book()
    scoped = [
        *GLOBAL,
        {
            "sourcedId": "c1-hw",
            "status": "active",
            "title": " homework ",
            "metadata": {"classId": "c1"},
        },
    ]
    out = build(
        book,
        CLASSES,
        SESSIONS,
        SisState(categories=scoped),
        {},
        settings(tenant(create_categories="true")),
        NIGHT,
    )
    homework = {
        r["class"]: r["body"]["lineItem"]["category"]["sourcedId"]
        for r in by_kind(out.requests, "lineItem")
        if r["body"]["lineItem"]["title"].startswith(("Assignment", "Discussion"))
        and r["body"]["lineItem"]["category"]["sourcedId"] in ("c1-hw", "cat-hw")
    }
    assert homework == {"c1": "c1-hw", "c2": "cat-hw"}
    created = by_kind(out.requests, "category")
    assert [c["body"]["category"]["title"] for c in created] == ["Extra Credit"]
    assert out.requests[0]["kind"] == "category"  # before any lineItem that names it


def test_standard_reuses_a_sis_line_item_with_the_same_title_and_due_date():
    book = canvas_book()
    first = book.assignments.sort_values("due_at").iloc[0]
    class_id = first["course_id"].removeprefix("p-")
    sis = SisState(
        categories=GLOBAL,
        line_items={
            class_id: [
                {
                    "sourcedId": "teacher-made-1",
                    "status": "active",
                    "title": first["name"],
                    "dueDate": first["due_at"][:10] + "T12:00:00Z",
                }
            ]
        },
        results={
            class_id: [
                {
                    "sourcedId": "sis-r-9",
                    "lineItem": {"sourcedId": "teacher-made-1"},
                    "student": {"sourcedId": "u1"},
                }
            ]
        },
    )
    out = build(
        book, CLASSES, SESSIONS, sis, {}, settings(tenant(default_category="Homework")), NIGHT
    )
    key = f"a:{first['assignment_id']}:{class_id}"
    item = next(r for r in out.requests if r["key"] == key)
    assert item["path"] == "/lineItems/teacher-made-1"
    reused = [
        r for r in out.requests if r.get("line_item_key") == key and r["path"] == "/results/sis-r-9"
    ]
    assert len(reused) == 1


def test_modified_sends_new_line_items_without_a_sourced_id():
    book = canvas_book()
    t = tenant(endpoints="modified", default_category="Homework")
    out = build(book, CLASSES, SESSIONS, SisState(categories=GLOBAL), {}, settings(t), NIGHT)
    items = by_kind(out.requests, "lineItem")
    assert all(
        i["path"] == "/lineItems" and "sourcedId" not in i["body"]["lineItem"] for i in items
    )
    result = by_kind(out.requests, "result")[0]
    assert (
        result["body"]["result"]["lineItem"]["sourcedId"]
        == "{{lineItem:" + result["line_item_key"] + "}}"
    )
    # Once the SIS has named a lineItem, later nights address it by that name.
    known = {items[0]["key"]: "sis-42"}
    again = build(book, CLASSES, SESSIONS, SisState(categories=GLOBAL), known, settings(t), NIGHT)
    first = next(r for r in again.requests if r["key"] == items[0]["key"])
    assert first["path"] == "/lineItems/sis-42"
    # ... and the idempotency hash does not change with it.
    assert body_hash(first) == body_hash(items[0])


def test_post_to_sis_only_and_grading_periods():
    book = canvas_book()
    t = tenant(assignments="post_to_sis", grading_periods="true", default_category="Homework")
    out = build(book, CLASSES, SESSIONS, SisState(categories=GLOBAL), {}, settings(t), NIGHT)
    ids = {
        int(r["key"].split(":")[1])
        for r in by_kind(out.requests, "lineItem")
        if r["key"].startswith("a:")
    }
    flagged = set(
        book.assignments.loc[book.assignments["post_to_sis"].astype(bool), "assignment_id"]
    )
    assert ids and ids <= flagged and ids != set(book.assignments["assignment_id"])
    for r in by_kind(out.requests, "lineItem"):
        li = r["body"]["lineItem"]
        due = li["dueDate"][:10]
        expected = "gp1" if due <= "2026-10-31" else "gp2"
        assert li["gradingPeriod"]["sourcedId"] == expected, (li["title"], due)
    # The course grade is the current grading period's.
    assert {r["key"] for r in by_kind(out.requests, "lineItem") if r["key"].startswith("cg:")} == {
        "cg:c1:gp2",
        "cg:c2:gp2",
    }


def test_one_point_two_bodies_satisfy_the_official_schema_strictly():
    book = canvas_book()
    t = tenant(version="1.2", default_category="Homework", create_categories="true")
    base = "https://sis.example.org/ims/oneroster/gradebook/v1p2"
    out = build(book, CLASSES, SESSIONS, SisState(categories=GLOBAL), {}, settings(t, base), NIGHT)
    assert {r["kind"] for r in out.requests} == {"lineItem", "result"}
    for r in out.requests:
        jsonschema.validate(r["body"], BODIES[r["kind"]], format_checker=checker)
    # The validator is strict enough to fail the loose form consumers send in the field.
    loose = {
        "result": {
            "sourcedId": "x",
            "lineItem": {"sourcedId": "li"},
            "student": {"sourcedId": "u"},
            "scoreStatus": "fully graded",
            "scoreDate": "2026-11-21T10:00:00Z",
        }
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(loose, BODIES["result"], format_checker=checker)
    result = by_kind(out.requests, "result")[0]["body"]["result"]
    assert result["class"]["type"] == "class" and result["late"] in ("true", "false")
    li = by_kind(out.requests, "lineItem")[0]["body"]["lineItem"]
    assert li["school"] == {
        "href": "https://sis.example.org/ims/oneroster/rostering/v1p2/orgs/s1",
        "sourcedId": "s1",
        "type": "org",
    }


def test_a_course_grade_goes_for_every_student_canvas_scores():
    """Whatever moved the score (a grade, a re-weighting, an excused assignment), the course
    grade result follows Canvas's current score; unchanged ones are left to the ledger's hash."""
    book = canvas_book(date(2026, 11, 28))
    t = tenant(default_category="Homework")
    payloads = build(
        book, CLASSES, SESSIONS, SisState(categories=GLOBAL), {}, settings(t), date(2026, 11, 28)
    )
    graded = {
        r["body"]["result"]["student"]["sourcedId"]: r["body"]["result"]["score"]
        for r in by_kind(payloads.requests, "result")
        if r["key"].startswith("r:cg:")
    }
    scored = book.students.dropna(subset=["current_score"])
    expected = dict(
        zip(scored["sis_user_id"].str.removeprefix("p-"), scored["current_score"], strict=True)
    )
    assert graded == expected and len(graded) == 5


def _recording(name: str) -> list[dict]:
    return json.loads(json.loads((EDULINQ / name).read_text())["response_body"])


def test_real_canvas_recordings_become_payloads():
    """edulinq's recordings of a real Canvas: course 130000000, its three assignments (all
    omitted from the final grade, no due dates), twelve submissions and the roster with
    enrollments. The course has no SIS ids, so its one section stands for class ``k1``."""
    course = "course-130000000"
    assignments = _recording("19_GET_api_v1_courses_130000000_assignments.json")
    submissions = _recording("29_GET_api_v1_courses_130000000_students_submissions.json")
    users = _recording("36_GET_api_v1_courses_130000000_users.json")
    groups = [{"id": assignments[0]["assignment_group_id"], "name": "Homework"}]
    enrollments = [
        {**e, "sis_user_id": u["sis_user_id"], "sis_section_id": "k1"}
        for u in users
        for e in u["enrollments"]
    ]
    book = assemble([course_rows(course, groups, assignments, submissions, enrollments)])
    assert len(book.assignments) == 3 and len(book.submissions) == 12
    assert len(book.students) == 4  # the teacher is not a student
    classes = pd.DataFrame(
        {"sourcedId": ["k1"], "schoolSourcedId": ["s1"], "termSourcedIds": [["t1"]]}
    )
    t = tenant(version="1.2", default_category="Homework")
    base = "https://sis.example.org/ims/oneroster/gradebook/v1p2"
    sis = SisState(categories=GLOBAL)
    assert not build(book, classes, SESSIONS, sis, {}, settings(t, base), NIGHT).requests
    t = tenant(version="1.2", default_category="Homework", include_omitted="true")
    out = build(book, classes, SESSIONS, sis, {}, settings(t, base), NIGHT)
    items = by_kind(out.requests, "lineItem")
    assert [i["body"]["lineItem"]["title"] for i in items] == [
        "Assignment 1",
        "Assignment 2",
        "Assignment 3",
    ]
    results = by_kind(out.requests, "result")
    assert len(results) == 11  # one submission is unsubmitted and not missing: nothing to send
    scores = {
        (
            r["body"]["result"]["student"]["sourcedId"],
            r["body"]["result"]["lineItem"]["sourcedId"],
        ): r["body"]["result"]["score"]
        for r in results
    }
    assert scores[("extra-course-student-2@test.edulinq.org", "cnv-a130000300-k1")] == 22.5
    assert {r["body"]["result"]["scoreDate"] for r in results} == {
        "2004-11-09",
        "2008-01-10",
        "2011-03-13",
    }
    for r in out.requests:
        jsonschema.validate(r["body"], BODIES[r["kind"]], format_checker=checker)
    assert isinstance(
        datetime.fromisoformat(items[0]["body"]["lineItem"]["dueDate"].replace("Z", "+00:00")),
        datetime,
    )
