"""The demo's grade passback story: a teacher's day in Canvas between the two nights (the
second night converges the SIS to it), and a grade that reaches the SIS within minutes."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import orjson
import pandas as pd

from ..core.lake import Lake
from ..core.nights import end_of_night
from ..core.storage import read_frame
from ..simulator.canvas import CanvasSimulator
from ..simulator.plugin import canvas_simulator
from ..simulator.sis_gradebook import SisGradebook
from ..simulator.teacher import TeacherDay, a_course_with_grades, a_day_of_edits, grade

TENANT = "demo-genesis"


def _canvas(lake: Lake) -> CanvasSimulator:
    return canvas_simulator(TENANT, lake.simulator_state("canvas"))


def teacher_day(lake: Lake, night: date) -> TeacherDay | None:
    """Noon of the night's day: a teacher deletes an assignment, weights the groups, clears a grade."""
    day = a_day_of_edits(_canvas(lake), end_of_night(night) - timedelta(hours=12))
    if day is not None:
        print(f"A teacher's day in Canvas ({TENANT}, course {day.course}): " + "; ".join(day.did))
    return day


def convergence(lake: Lake, night: date, day: TeacherDay) -> None:
    """What the night sent for the teacher's course: removals and changed course grades."""
    requests = lake.gpb_requests(night, TENANT)
    outcomes = lake.gpb_outcomes(night, TENANT)
    if not requests.exists() or not outcomes.exists():
        return
    course_of = {}
    for line in requests.read_bytes().splitlines():
        meta = orjson.loads(line)["meta"]
        course_of[meta["key"]] = meta.get("course")
    done = read_frame(outcomes)
    done = done[done["key"].map(course_of) == day.course]
    removed = done[done["status"].isin(["removed", "gone"])]
    grades = done[done["key"].str.startswith("r:cg:") & (done["status"] == "sent")]
    print(
        f"  night {night} converged the SIS to it: {len(removed)} removals "
        f"({_kinds(removed)}), {len(grades)} course grades re-sent, "
        f"{int((done['status'] == 'sent').sum())} requests sent for the course"
    )


def _kinds(frame: pd.DataFrame) -> str:
    counts = frame["kind"].value_counts()
    return ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in counts.items()) or "none"


def within_minutes(instance, lake: Lake) -> None:
    """A grade entered now through Canvas's grading endpoint, seen by the tenant's sensor in the
    Grade Change Log, sent by the grade_sync run it asks for: how long until the SIS has it."""
    import dagster as dg

    from ..defs.gpb.sync import grade_sync_tick
    from ..operate import run_request

    sim = _canvas(lake)
    sim.clock = None
    course = a_course_with_grades(sim, datetime.now(UTC))
    book = sim.gradebook(course) if course else None
    if not book or not book["enrollments"]:
        return
    assignment, student = book["assignments"][-1], book["enrollments"][0]
    started = time.monotonic()
    grade(sim, course, assignment["id"], student["sis_user_id"], "7")
    tick = grade_sync_tick(dg.build_sensor_context(instance=instance), TENANT)
    requests = getattr(tick, "run_requests", None) or []
    for request in requests:
        run_request(instance, request)
    elapsed = time.monotonic() - started
    held = sis_score(lake, assignment["name"], student)
    print(
        f"A grade entered in Canvas now ({course}, {assignment['name']!r}, {student['sis_user_id']}: 7) "
        f"reached the SIS in {elapsed:.1f} s (sensor tick and grade_sync run; SIS holds {held}); "
        f"with the daemon add up to the tenant's gpb.sync_interval_s"
    )


def sis_score(lake: Lake, title: str, enrollment: dict) -> float | None:
    """The score demo-genesis's simulated SIS holds for a Canvas enrollment on an assignment."""
    sis = SisGradebook("1.1", lake.simulator_state("oneroster") / f"{TENANT}.gradebook.json")
    return sis.score(
        enrollment["sis_section_id"].removeprefix("gen-"),
        title,
        enrollment["sis_user_id"].removeprefix("gen-"),
    )
