"""Grades within minutes: a grade a teacher enters through Canvas's own grading endpoint is
seen by the tenant's grade_sync sensor in the Grade Change Log, and the grade_sync run it
launches puts it in the SIS gradebook; the nightly pass then finds it unchanged. And the
operator's sync-grades, and the removal guard on the night a teacher deletes assignments."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
import httpx

from sis_pipelines.cli import main
from sis_pipelines.core.lake import Lake
from sis_pipelines.core.nights import end_of_night, latest_complete_night
from sis_pipelines.defs.gpb.sync import grade_sync_tick
from sis_pipelines.operate import run_tenant_night
from sis_pipelines.operate.runs import create_run, run_and_follow
from sis_pipelines.simulator.plugin import canvas_simulator
from sis_pipelines.simulator.sis_gradebook import SisGradebook

from .support import latest_meta

TENANTS = """
tenants:
  gpb-s:
    vendor: genesis
    oneroster: {version: "1.1", source: simulator, students: 200, seed: 4}
    canvas: {source: simulator, sis_id_prefix: "s-", gradebook_share: 4}
    gpb: {endpoints: standard, default_category: Homework, removal_guard_floor: 2}
"""


def _canvas(data):
    sim = canvas_simulator("gpb-s", Lake.at(str(data)).simulator_state("canvas"))
    http = httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {sim.token}"})
    return sim, http


def _a_graded_assignment(sim, night) -> tuple[str, dict, dict]:
    """A course with a gradebook, one of its assignments and one of its students."""
    for course_id in sorted(sim.state["courses"]):
        book = sim.gradebook(course_id, end_of_night(night))
        if book and book["assignments"] and book["enrollments"]:
            return course_id, book["assignments"][0], book["enrollments"][0]
    raise AssertionError("no course with a gradebook")


def _sis_score(data, assignment_name: str, enrollment: dict) -> float | None:
    """The score the SIS holds for the Canvas student enrollment's class and assignment."""
    sis = SisGradebook(
        "1.1", Lake.at(str(data)).simulator_state("oneroster") / "gpb-s.gradebook.json"
    )
    return sis.score(
        enrollment["sis_section_id"].removeprefix("s-"),
        assignment_name,
        enrollment["sis_user_id"].removeprefix("s-"),
    )


def test_a_grade_entered_in_canvas_reaches_the_sis_between_nights(workspace, capsys):
    instance, data, tenants = workspace
    tenants.write_text(TENANTS)
    night = latest_complete_night()
    assert run_tenant_night(instance, "gpb-s", night).success
    sim, http = _canvas(data)
    course_id, assignment, enrollment = _a_graded_assignment(sim, night)
    student = enrollment["sis_user_id"]
    before = _sis_score(data, assignment["name"], enrollment)
    # The teacher grades through Canvas's own endpoint.
    response = http.put(
        f"/api/v1/courses/sis_course_id:{course_id}/assignments/{assignment['id']}"
        f"/submissions/sis_user_id:{student}",
        data={"submission[posted_grade]": "3.5"},
    )
    assert response.status_code == 200 and response.json()["score"] == 3.5
    assert before != 3.5
    from sis_pipelines.definitions import defs
    from sis_pipelines.defs.partitions import partition_key

    # While a run of the tenant is queued or running (its nightly pass), the sensor waits.
    nightly, _ = create_run(
        instance, defs.resolve_job_def("nightly"), str(partition_key("gpb-s", night)), {}, None, {}
    )
    waiting = grade_sync_tick(dg.build_sensor_context(instance=instance), "gpb-s")
    assert isinstance(waiting, dg.SkipReason) and "queued or running" in waiting.skip_message
    instance.delete_run(nightly.run_id)
    # The tenant's sensor sees it in the Grade Change Log and asks for a sync of that course.
    context = dg.build_sensor_context(instance=instance)
    result = grade_sync_tick(context, "gpb-s")
    assert isinstance(result, dg.SensorResult) and result.run_requests, result
    [request] = result.run_requests
    config = request.run_config["ops"]["sync_grades"]["config"]
    assert course_id in config["courses"] and config["tenant"] == "gpb-s"
    assert request.tags["dagster/partition/tenant"] == "gpb-s"
    cursor = json.loads(result.cursor)["after"]
    run, recon = create_run(
        instance, defs.resolve_job_def("grade_sync"), None, request.tags, None, request.run_config
    )
    assert run_and_follow(instance, run, recon, on_step=lambda end: None).is_success
    assert _sis_score(data, assignment["name"], enrollment) == 3.5
    # The next tick has nothing new; a sync again sends nothing; the night finds it unchanged.
    again = grade_sync_tick(
        dg.build_sensor_context(instance=instance, cursor=result.cursor), "gpb-s"
    )
    assert not getattr(again, "run_requests", None), again
    assert json.loads(again.cursor)["after"] == cursor
    capsys.readouterr()
    assert main(["sync-grades", "--tenant", "gpb-s", "--course", course_id]) == 0
    assert "grade sync of 1 courses: 0 sent" in capsys.readouterr().out
    runs = instance.get_run_records(dg.RunsFilter(job_name="grade_sync"))
    assert {r.dagster_run.tags["sis_pipelines/grade_sync"] for r in runs} == {
        "grade_change_log",
        "operator",
    }


def test_sync_grades_mistakes_get_one_line(workspace, capsys):
    instance, _data, tenants = workspace
    tenants.write_text(TENANTS)
    assert main(["sync-grades", "--tenant", "nobody"]) == 2
    assert "not in the tenants file" in capsys.readouterr().err
    # A tenant that passes no grades back is told so, and no run is launched.
    tenants.write_text(
        TENANTS + "  rostering-only:\n    vendor: focus\n"
        '    oneroster: {version: "1.1", source: simulator}\n'
    )
    assert main(["sync-grades", "--tenant", "rostering-only"]) == 2
    err = capsys.readouterr().err
    assert "has no canvas section, so it passes no grades back" in err, err
    assert not instance.get_run_records(dg.RunsFilter(job_name="grade_sync"))
    # Before any night: the sync says what to run first.
    assert main(["sync-grades", "--tenant", "gpb-s"]) == 1
    out = capsys.readouterr().out
    assert "no nightly grade pass yet" in out and "Traceback" not in out
    assert run_tenant_night(instance, "gpb-s", latest_complete_night()).success
    assert main(["sync-grades", "--tenant", "gpb-s", "--course", "no-such-course"]) == 1
    out = capsys.readouterr().out
    assert "no-such-course is not a course this pipeline provisioned" in out


def test_deleting_assignments_converges_and_the_removal_guard_holds_a_mass_removal(workspace):
    instance, data, tenants = workspace
    tenants.write_text(TENANTS)
    night = latest_complete_night()
    first = night - timedelta(days=1)
    assert run_tenant_night(instance, "gpb-s", first).success
    sim, http = _canvas(data)
    # A teacher deletes every assignment of every course during the next day.
    sim.edit_clock = end_of_night(first) + timedelta(hours=12)
    deleted = []
    for course_id in sorted(sim.state["courses"]):
        book = sim.gradebook(course_id, sim.edit_clock)
        for a in (book or {}).get("assignments", []):
            r = http.delete(f"/api/v1/courses/sis_course_id:{course_id}/assignments/{a['id']}")
            assert r.status_code == 200
            deleted.append(a["id"])
    assert deleted
    sim.edit_clock = None
    outcome = run_tenant_night(instance, "gpb-s", night)
    assert not outcome.success  # the removal guard blocked the push
    key = dg.AssetCheckKey(dg.AssetKey(["gpb", "payloads"]), "removal_guard")
    latest = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)[0]
    evaluation = latest.event.dagster_event.event_specific_data
    assert not evaluation.passed
    assert evaluation.metadata["lineItem_removals"].value > 2
    assert (
        "its assignment no longer passes back" in evaluation.metadata["what_would_be_removed"].value
    )

    def ours_of_deleted() -> set[str]:
        live = SisGradebook(
            "1.1", Lake.at(str(data)).simulator_state("oneroster") / "gpb-s.gradebook.json"
        )
        return {
            k
            for k, r in live.store["lineItems"].items()
            if r.get("status") == "active" and k.startswith(tuple(f"cnv-a{a}-" for a in deleted))
        }

    assert ours_of_deleted()  # nothing was removed
    # On purpose: the removals go, and the SIS holds no lineItem of a deleted assignment.
    assert main(["run", "--tenant", "gpb-s", "--night", str(night), "--allow-mass-removal"]) == 0
    assert latest_meta(instance, "gpb/push")["removed"] > 0
    assert not ours_of_deleted()
