"""Grade passback converges: after any sequence of Canvas gradebook edits over nights (create,
grade, regrade, clear, excuse, mark missing or late, delete, unpublish, omit, re-weight groups,
change points and due dates), with teachers sometimes changing grades in the SIS, each night's
push leaves the simulated SIS gradebook equal to the whole mapping of the latest Canvas
gradebook, except the grades teachers changed in the SIS (kept: ``keep_sis``).

Everything goes over HTTP: the teachers' edits through Canvas's own API of the simulated
Canvas, the pipeline's reads and the SIS gradebook's PUTs and DELETEs through the real clients.
The expected gradebook is computed here, from Canvas's gradebook, by the mapping's rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sis_pipelines.core.lake import Lake
from sis_pipelines.core.nights import end_of_night
from sis_pipelines.core.storage import write_frame
from sis_pipelines.core.tenant_night import TenantNight
from sis_pipelines.core.tenants import parse_tenants
from sis_pipelines.gpb import passback
from sis_pipelines.gpb.passback import compute_payloads, push_night, read_canvas_gradebook
from sis_pipelines.services.connect import Services
from sis_pipelines.simulator.canvas_gradebook import assignment_groups, counts
from sis_pipelines.simulator.plugin import canvas_simulator
from sis_pipelines.simulator.sis_gradebook import SisGradebook

from .gpb_world import SESSIONS

TENANT = "conv"
PREFIX = "p-"
ROSTER = {"c1": ["u1", "u2", "u3"], "c2": ["u4", "u5"]}
CLASSES = pd.DataFrame(
    {
        "sourcedId": list(ROSTER),
        "schoolSourcedId": ["s1"] * len(ROSTER),
        "termSourcedIds": [["t1"]] * len(ROSTER),
    }
)
FIRST_NIGHT = date(2026, 9, 7)
CONFIGURATIONS = [  # vendor, version, endpoints: DELETE and PUT tobedeleted both run
    ("genesis", "1.1", "standard"),
    ("progressbook", "1.1", "modified"),
    ("infinite_campus", "1.2", "standard"),
    ("infinite_campus", "1.2", "modified"),
]

index = st.integers(0, 50)
course = st.sampled_from(sorted(ROSTER))
EDIT = st.one_of(
    st.tuples(st.just("create"), course, st.integers(0, 3), st.sampled_from([5.0, 10.0, 20.0])),
    st.tuples(st.just("grade"), course, index, index, st.integers(0, 10)),
    st.tuples(st.just("clear"), course, index, index),
    st.tuples(st.just("excuse"), course, index, index, st.booleans()),
    st.tuples(
        st.just("late_policy"), course, index, index, st.sampled_from(["missing", "late", "none"])
    ),
    st.tuples(st.just("delete"), course, index),
    st.tuples(st.just("publish"), course, index, st.booleans()),
    st.tuples(st.just("omit"), course, index, st.booleans()),
    st.tuples(st.just("points"), course, index, st.sampled_from([0.0, 8.0, 50.0])),
    st.tuples(st.just("due"), course, index, st.integers(1, 60)),
    st.tuples(
        st.just("weights"),
        course,
        st.lists(st.sampled_from([0.0, 10.0, 30.0, 60.0]), min_size=4, max_size=4),
        st.booleans(),
    ),
    st.tuples(st.just("sis_teacher"), index, st.integers(0, 10)),
)
NIGHTS = st.lists(st.lists(EDIT, max_size=6), min_size=1, max_size=3)


@dataclass
class World:
    lake: Lake
    services: Services
    tenant: Any
    http: httpx.Client
    sim: Any
    sis_file: Any
    version: str
    assignments: dict[str, list[int]] = field(default_factory=dict)
    sis_owned: set[tuple[str, str, str]] = field(default_factory=set)  # class, title, student
    created: int = 0

    def canvas(self, method: str, path: str, **form: Any) -> None:
        response = self.http.request(method, path, data={k: str(v) for k, v in form.items()})
        assert response.status_code < 300, response.text

    def assignment(self, course_id: str, i: int) -> int | None:
        live = self.assignments.get(course_id) or []
        return live[i % len(live)] if live else None

    def student(self, course_id: str, i: int) -> str:
        students = ROSTER[course_id.removeprefix(PREFIX)]
        return PREFIX + students[i % len(students)]


def _world(tmp_path, vendor: str, version: str, endpoints: str) -> World:
    text = f"""
tenants:
  {TENANT}:
    vendor: {vendor}
    oneroster: {{version: "{version}", source: simulator, students: 100, seed: 1}}
    canvas: {{source: simulator, sis_id_prefix: "{PREFIX}", gradebook_share: 1000000000}}
    gpb: {{endpoints: {endpoints}, default_category: Homework}}
"""
    tenant = parse_tenants(text).tenants[TENANT]
    lake = Lake.at(str(tmp_path / "lake"))
    sim = canvas_simulator(TENANT, lake.simulator_state("canvas"))
    sim.generated_gradebooks = False
    for class_id, students in ROSTER.items():
        course_id = PREFIX + class_id
        sim.state["courses"][course_id] = {
            "course_id": course_id,
            "term_id": "",
            "status": "active",
        }
        for student in students:
            sim.state["enrollments"][f"{course_id}|{student}"] = {
                "course_id": course_id,
                "section_id": course_id,
                "user_id": PREFIX + student,
                "role": "student",
                "status": "active",
            }
    http = httpx.Client(
        base_url=sim.base_url, headers={"Authorization": f"Bearer {sim.token}"}, timeout=10
    )
    sis_file = lake.simulator_state("oneroster") / f"{TENANT}.gradebook.json"
    return World(lake, Services(lake), tenant, http, sim, sis_file, version)


def _edit(world: World, edit: tuple) -> None:
    op, *args = edit
    if op == "sis_teacher":
        _teacher_in_sis(world, *args)
        return
    course_id = PREFIX + args[0]
    base = f"/api/v1/courses/sis_course_id:{course_id}"
    if op == "create":
        group = assignment_groups(course_id)[args[1]]
        world.created += 1
        n = world.created
        response = world.http.post(
            f"{base}/assignments",
            data={
                "assignment[name]": f"{course_id} work {n}",
                "assignment[points_possible]": str(args[2]),
                "assignment[assignment_group_id]": str(group["id"]),
                "assignment[due_at]": f"2026-09-{1 + n % 3:02d}T23:59:00Z",
            },
        )
        assert response.status_code == 201, response.text
        world.assignments.setdefault(course_id, []).append(response.json()["id"])
        return
    if op == "weights":
        groups = assignment_groups(course_id)
        for group, weight in zip(groups, args[1], strict=True):
            world.canvas("PUT", f"{base}/assignment_groups/{group['id']}", group_weight=weight)
        world.canvas(
            "PUT", base, **{"course[apply_assignment_group_weights]": str(args[2]).lower()}
        )
        return
    assignment = world.assignment(course_id, args[1])
    if assignment is None:
        return
    path = f"{base}/assignments/{assignment}"
    if op in ("grade", "clear", "excuse", "late_policy"):
        target = f"{path}/submissions/sis_user_id:{world.student(course_id, args[2])}"
        form = {
            "grade": {"submission[posted_grade]": str(args[-1])},
            "clear": {"submission[posted_grade]": ""},
            "excuse": {"submission[excuse]": str(args[-1]).lower()},
            "late_policy": {"submission[late_policy_status]": args[-1]},
        }[op]
        world.canvas("PUT", target, **form)
    elif op == "delete":
        world.canvas("DELETE", path)
        world.assignments[course_id].remove(assignment)
    elif op == "publish":
        world.canvas("PUT", path, **{"assignment[published]": str(args[2]).lower()})
    elif op == "omit":
        world.canvas("PUT", path, **{"assignment[omit_from_final_grade]": str(args[2]).lower()})
    elif op == "points":
        world.canvas("PUT", path, **{"assignment[points_possible]": args[2]})
    elif op == "due":
        due = datetime(2026, 9, 1) + timedelta(days=args[2])
        world.canvas("PUT", path, **{"assignment[due_at]": due.strftime("%Y-%m-%dT%H:%M:%SZ")})


def _teacher_in_sis(world: World, i: int, score: int) -> None:
    """A teacher changes one of the assignment grades in the SIS itself."""
    sis = SisGradebook(world.version, world.sis_file)
    items = sis.store["lineItems"]
    ours = sorted(
        rid
        for rid, r in sis.store["results"].items()
        if r.get("status") == "active"
        and items.get(r["lineItem"]["sourcedId"], {}).get("title") != "Course grade"
    )
    if not ours:
        return
    result = sis.store["results"][ours[i % len(ours)]]
    item = items[result["lineItem"]["sourcedId"]]
    sis.teacher_sets(result["sourcedId"], float(score))
    sis.save()
    world.sis_owned.add((item["class"]["sourcedId"], item["title"], result["student"]["sourcedId"]))


def _expected(world: World, night: date) -> tuple[set, dict, dict]:
    """The whole mapping of Canvas's gradebook at the end of the night, by the mapping's rules:
    lineItems (class, title, points), results (class, title, student) -> (status, score),
    course grades (class, student) -> score."""
    world.sim.clock = end_of_night(night)
    items, results, course_grades = set(), {}, {}
    for class_id, students in ROSTER.items():
        book = world.sim.gradebook(PREFIX + class_id)
        counted = {a["id"]: a for a in book["assignments"] if counts(a)}
        for a in counted.values():
            items.add((class_id, a["name"], float(a["points_possible"])))
        for sub in book["submissions"]:
            a = counted.get(sub["assignment_id"])
            if a is None:
                continue
            student = sub["_sis_user_id"].removeprefix(PREFIX)
            if sub.get("excused"):
                status = ("exempt", None)
            elif sub.get("score") is not None and sub["workflow_state"] == "graded":
                status = ("fully graded", float(sub["score"]))
            elif sub.get("missing"):
                status = ("not submitted", None)
            elif sub["workflow_state"] in ("submitted", "pending_review"):
                status = ("submitted", None)
            else:
                continue
            results[(class_id, a["name"], student)] = status
        for e in book["enrollments"]:
            score = e["grades"]["current_score"]
            if score is not None:
                course_grades[(class_id, e["sis_user_id"].removeprefix(PREFIX))] = float(score)
        assert {e["sis_user_id"].removeprefix(PREFIX) for e in book["enrollments"]} == set(students)
    return items, results, course_grades


def _in_sis(world: World) -> tuple[set, dict, dict]:
    sis = SisGradebook(world.version, world.sis_file)
    live = {k: r for k, r in sis.store["lineItems"].items() if r.get("status") == "active"}
    items, results, course_grades = set(), {}, {}
    for r in live.values():
        if r["title"] != "Course grade":
            items.add((r["class"]["sourcedId"], r["title"], float(r["resultValueMax"])))
    for r in sis.store["results"].values():
        item = live.get(r["lineItem"]["sourcedId"])
        if r.get("status") != "active" or item is None:
            continue
        class_id, student = item["class"]["sourcedId"], r["student"]["sourcedId"]
        score = None if r.get("score") is None else float(r["score"])
        if item["title"] == "Course grade":
            course_grades[(class_id, student)] = score
        else:
            results[(class_id, item["title"], student)] = (r["scoreStatus"], score)
    return items, results, course_grades


def _night(world: World, night: date) -> None:
    courses = [PREFIX + c for c in ROSTER]  # the night's Canvas mapping provisioned them
    write_frame(
        pd.DataFrame({"course_id": courses, "status": ["active"] * len(courses)}),
        world.lake.canvas_file("courses", night, TENANT),
    )
    tn = TenantNight(TENANT, world.tenant, night)
    figures = read_canvas_gradebook(world.lake, world.services, tn)
    assert figures["courses_read"] == len(ROSTER)
    compute_payloads(world.lake, world.services, tn, CLASSES, SESSIONS, True)
    push_night(world.lake, world.services, tn)


@pytest.mark.parametrize(("vendor", "version", "endpoints"), CONFIGURATIONS)
@settings(
    max_examples=8,
    phases=[Phase.generate],
    derandomize=True,  # the same examples on every run: CI never meets a new one by chance
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(nights=NIGHTS)
def test_the_sis_gradebook_converges_to_canvas(
    tmp_path_factory, vendor, version, endpoints, nights
):
    _converges(_world(tmp_path_factory.mktemp("conv"), vendor, version, endpoints), nights)


@settings(
    max_examples=4,
    phases=[Phase.generate],
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(nights=NIGHTS)
def test_a_pass_planned_a_course_at_a_time_converges_alike(tmp_path_factory, monkeypatch, nights):
    """A district's pass is planned a few hundred courses at a time (its SIS state and
    requests held one part at a time) and sent a few hundred classes at a time (the ledger
    journaled after each); parts of one course and one class converge the same way, the removal
    guard judging the whole pass."""
    monkeypatch.setattr(passback, "COURSES_PER_PART", 1)
    monkeypatch.setattr(passback, "REQUESTS_PER_PART", 1)
    _converges(_world(tmp_path_factory.mktemp("parts"), *CONFIGURATIONS[0]), nights)


def _converges(world: World, nights: list) -> None:
    night = FIRST_NIGHT
    try:
        world.sim.edit_clock = end_of_night(night) - timedelta(hours=12)
        for class_id in ROSTER:  # every course starts with two assignments, one graded
            _edit(world, ("create", class_id, 0, 10.0))
            _edit(world, ("create", class_id, 2, 20.0))
            _edit(world, ("grade", class_id, 0, 0, 7))
        for edits in [[], *nights]:
            world.sim.edit_clock = end_of_night(night) - timedelta(hours=12)
            for edit in edits:
                _edit(world, edit)
            _night(world, night)
            want_items, want_results, want_grades = _expected(world, night)
            items, results, grades = _in_sis(world)
            owned = world.sis_owned
            held = {(c, t) for c, t, _ in owned}
            assert {i for i in items if i[:2] not in held} == {
                i for i in want_items if i[:2] not in held
            }
            assert {k: v for k, v in results.items() if k not in owned} == {
                k: v for k, v in want_results.items() if k not in owned
            }
            assert {k: v for k, v in grades.items() if v is not None} == want_grades
            night += timedelta(days=1)
    finally:
        world.http.close()
        world.sim.stop()


def test_a_ledger_from_before_removals_reads_its_keys(tmp_path):
    """A ledger written before it kept kind, class, lineItem and student: they are read back
    from the keys, so its objects can converge too (course comes from the gradebook)."""
    lake = Lake.at(str(tmp_path))
    old = pd.DataFrame(
        {
            "key": [
                "c:homework",
                "a:17:cls-1",
                "cg:cls-1:gp1",
                "r:a:17:cls-1:stu-9",
                "r:cg:cls-1:stu-9",
            ],
            "sis_id": ["cat-1", "li-1", "li-2", "r-1", "r-2"],
            "body_hash": ["h"] * 5,
            "score": [None, None, None, 7.0, 80.0],
            "score_status": [None, None, None, "fully graded", "fully graded"],
            "night": ["2026-09-01"] * 5,
        }
    )
    write_frame(old, lake.gpb_ledger_file("t"))
    from sis_pipelines.gpb.removals import complete_ledger, empty_ledger

    ledger = complete_ledger(lake.read_gpb_ledger("t", empty_ledger()))
    assert ledger["kind"].tolist() == ["category", "lineItem", "lineItem", "result", "result"]
    assert pd.isna(ledger["class"][0]) and ledger["class"].tolist()[1:] == ["cls-1"] * 4
    assert ledger["line_item_key"].tolist()[3:] == ["a:17:cls-1", "cg:cls-1"]
    assert ledger["student"].tolist()[3:] == ["stu-9", "stu-9"]


def test_a_ledger_part_old_part_new_reads_back_only_what_is_missing(tmp_path):
    """Rows this release wrote are whole and left as they are (a district's ledger is a row
    per result ever sent); rows of an earlier release have their columns read back."""
    from sis_pipelines.gpb.removals import LEDGER_COLUMNS, _read_back, complete_ledger

    keys = ["c:homework", "a:17:cls-1", "cg:cls-1:gp1", "r:a:17:cls-1:stu-9", "r:cg:cls-1:stu-9"]
    whole = _read_back(
        pd.DataFrame({"key": keys, "sis_id": [f"s{i}" for i in range(5)]}).reindex(
            columns=list(LEDGER_COLUMNS)
        )
    )
    new = whole.assign(key=[f"{k}-new" for k in keys], course=["k"] * 5)  # as this release writes
    old = whole.assign(kind=pd.NA, line_item_key=pd.NA, student=pd.NA, **{"class": pd.NA})
    mixed = pd.concat([new, old], ignore_index=True).astype(LEDGER_COLUMNS)
    done = complete_ledger(mixed)
    pd.testing.assert_frame_equal(done.iloc[:5], new.astype(LEDGER_COLUMNS))
    pd.testing.assert_frame_equal(
        done.iloc[5:].reset_index(drop=True), whole.astype(LEDGER_COLUMNS)
    )
    assert complete_ledger(new.astype(LEDGER_COLUMNS)).equals(new.astype(LEDGER_COLUMNS))
