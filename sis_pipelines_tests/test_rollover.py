"""The school year's rollover, night by night from the end of May to mid-September: the end
of the spring term, the summer, the 1 August rollover (graduates leave, students move up and
change school, kindergarteners and transfers arrive, teachers move, class ids change while
course codes persist) and the first day of school. After every night Canvas holds the
night's state, nothing that ever had an enrollment is deleted, an ended term's enrollments
end completed, and the deletion guard lets every night through.

Walked for a SIS that drops last year's records at once and for one that keeps them
``tobedeleted`` for a month (Genesis's and Infinite Campus's simulated profiles).
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from sis_pipelines.canvas.api import CanvasClient, Polling
from sis_pipelines.canvas.delta import compute_delta, deletion_guard, with_retained
from sis_pipelines.canvas.enrollments import INTERNAL
from sis_pipelines.canvas.lifecycle import ended
from sis_pipelines.canvas.mapping import map_snapshot
from sis_pipelines.canvas.package import build_zip
from sis_pipelines.core.tenants import Canvas
from sis_pipelines.simulator.canvas import CanvasSimulator
from sis_pipelines.simulator.district import District
from sis_pipelines.simulator.vendors import VENDORS

from .support import canonical, canvas_matches

FAST = Polling(first_wait_s=0.001, max_wait_s=0.01, throttle_retries=4)
FIRST, LAST = date(2026, 5, 25), date(2026, 9, 15)
ROLLOVER = date(2026, 8, 1)


def nights() -> list[date]:
    return [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]


class Walk:
    """Canvas, night after night, as the pipeline leaves it; what each night did."""

    def __init__(self, sim: CanvasSimulator, cfg: Canvas) -> None:
        self.sim, self.cfg = sim, cfg
        self.previous: dict | None = None
        self.retained: dict = {}
        self.enrolled: dict[str, set[str]] = {"courses": set(), "sections": set()}
        self.deltas: dict[date, object] = {}

    def night(self, client: CanvasClient, snapshot: dict, night: date) -> dict:
        files = map_snapshot(canonical(snapshot), self.cfg, night)
        delta = compute_delta(
            self.previous, files, self.cfg, night, retained=self.retained, enrolled=self.enrolled
        )
        passed, findings = deletion_guard(self.previous, files, delta, self.cfg.max_removal_share)
        assert passed, (night, [f for f in findings if f.removals], delta.changes[delta.harmful])
        package = {n: f.drop(columns=[INTERNAL], errors="ignore") for n, f in delta.files.items()}
        if any(len(f) for f in package.values()):
            final = client.wait(client.post_sis_import(build_zip(package), {})["id"])
            assert final["workflow_state"] == "imported", final
        self.deltas[night] = delta
        self.previous, self.retained = files, delta.retained
        enrollments = files["enrollments"]
        self.enrolled["courses"] |= set(enrollments["course_id"].astype(str))
        self.enrolled["sections"] |= set(enrollments["section_id"].astype(str))
        return with_retained(files, delta.retained)


# Genesis (1.1) drops last year's records at once, Infinite Campus (1.2) keeps them a month.
@pytest.mark.parametrize("vendor", ["genesis", "infinite_campus"])
def test_a_district_walks_from_may_to_september_without_harm(vendor):
    profile = VENDORS[vendor]
    district = District(160, 8)
    cfg = Canvas(source="simulator")
    ever_enrolled: set[str] = set()
    users_before: set[str] = set()
    with CanvasSimulator() as sim, CanvasClient("t1", sim.base_url, sim.token, 1, FAST) as client:
        walk = Walk(sim, cfg)
        for night in nights():
            state = walk.night(
                client, district.snapshot(night, profile.keeps_tobedeleted_days), night
            )
            canvas_matches(sim, state)
            ever_enrolled |= {
                row["course_id"]
                for row in sim.state["enrollments"].values()
                if row.get("course_id")
            }
            courses = sim.state["courses"]
            assert not [c for c in ever_enrolled if courses[c]["status"] == "deleted"], night
            changes = walk.deltas[night].changes
            removed = changes[changes["file"] == "enrollments"]
            # An enrollment that leaves after its term ended is completed, never deleted.
            deleted = removed[removed["action"] == "delete"]["sis_id"]
            for key in deleted:
                assert not ended(pd.Series([sim.state["enrollments"][key]["end_date"]]), night)[0]
            if night == ROLLOVER - timedelta(days=1):
                users_before = {k for k, r in sim.state["users"].items() if r["status"] == "active"}
            if night == ROLLOVER:
                rollover = changes.groupby(["file", "action"]).size()
                assert rollover.get(("courses", "conclude"), 0) > 0
                assert rollover.get(("courses", "delete"), 0) == 0
                assert rollover.get(("sections", "delete"), 0) == 0
                assert rollover.get(("terms", "delete"), 0) == 0
                assert rollover.get(("courses", "add"), 0) > 0  # the new year, the same night
                # Returning students keep their Canvas user: nobody is recreated.
                returning = users_before & set(state["users"]["user_id"])
                assert len(returning) > 0.8 * len(users_before)
                assert all(sim.state["users"][u]["status"] == "active" for u in returning)
                assert not (set(changes.loc[changes["action"] == "add", "sis_id"]) & returning)
        # Mid-September: last year's courses concluded, none deleted, this year's active.
        last_year = [c for c in sim.state["courses"] if c.startswith("cls-2025-")]
        assert last_year and {sim.state["courses"][c]["status"] for c in last_year} == {"completed"}
        this_year = [c for c in sim.state["courses"] if c.startswith("cls-2026-")]
        assert {sim.state["courses"][c]["status"] for c in this_year} == {"active"}
        # Every enrollment of last year's courses ended completed (none deleted at the end).
        last = [r for r in sim.state["enrollments"].values() if r["course_id"] in last_year]
        assert {r["status"] for r in last} <= {"completed", "deleted"}
        assert sum(r["status"] == "completed" for r in last) > 0.9 * len(last)
        # Terms of last year kept: their courses are in them.
        assert {sim.state["terms"][t]["status"] for t in ("term-2025-1", "term-2025-2")} == {
            "active"
        }


TENANTS = """
tenants:
  roll-11:
    vendor: genesis
    oneroster: {version: "1.1", source: simulator, students: 160, seed: 8}
    canvas: {source: simulator, sis_id_prefix: "r-", gradebook_share: 2}
    gpb: {endpoints: standard, default_category: Homework, days_after_term: 14}
  roll-12:
    vendor: infinite_campus
    oneroster: {version: "1.2", source: simulator, students: 160, seed: 9}
    canvas: {source: simulator, sis_id_prefix: "s-", gradebook_share: 2}
    gpb: {endpoints: standard, default_category: Homework, days_after_term: 14}
"""
# The spring term's last days, two weeks after, the summer, the rollover, school again.
KEY_NIGHTS = [
    date(2026, 6, 5),
    date(2026, 6, 20),
    date(2026, 7, 31),
    ROLLOVER,
    date(2026, 8, 20),
]


def _term_ends(data, tenant: str, night: date) -> dict[str, date]:
    """Each class's term end, from the night's stored snapshot."""
    root = data / "oneroster"
    classes = pd.read_parquet(root / "classes" / str(night) / f"{tenant}.parquet")
    sessions = pd.read_parquet(root / "academic_sessions" / str(night) / f"{tenant}.parquet")
    end = dict(zip(sessions["sourcedId"], pd.to_datetime(sessions["endDate"]).dt.date, strict=True))
    return {
        c: end.get(t[0])
        for c, t in zip(classes["sourcedId"], classes["termSourcedIds"], strict=True)
    }


@pytest.mark.parametrize("tenant", ["roll-11", "roll-12"])
def test_the_rollover_through_dagster_with_grade_passback(workspace, tenant):
    import json

    from sis_pipelines.operate import run_tenant_night

    instance, data, tenants = workspace
    tenants.write_text(TENANTS)
    sent_to: dict[date, set[str]] = {}
    for night in KEY_NIGHTS:
        if night == ROLLOVER:  # the summer's last pass: an intraday sync of spring is refused
            refuse_closed_sync(data, tenant)
        outcome = run_tenant_night(instance, tenant, night)
        assert outcome.success, (night, outcome.errors)
        requests = data / "gpb" / "requests" / str(night) / f"{tenant}.jsonl"
        lines = (
            [json.loads(x) for x in requests.read_text().splitlines()] if requests.exists() else []
        )
        ends = _term_ends(data, tenant, night)
        classes = {r["meta"].get("class") for r in lines} - {None}
        sent_to[night] = classes
        # Grades go to a class until 14 days after its term ended, never later.
        late = {c for c in classes if ends.get(c) and ends[c] < night - timedelta(days=14)}
        assert not late, (night, sorted(late)[:5])
        # Last year's lineItems and results are never taken back.
        removals = [
            r
            for r in lines
            if r["method"] == "DELETE" or (r["body"] and "tobedeleted" in json.dumps(r["body"]))
        ]
        assert not removals, (night, removals[:2])
    assert sent_to[date(2026, 6, 5)]  # the spring term still grading
    assert not sent_to[date(2026, 7, 31)]  # summer: every term closed
    changes = pd.read_parquet(data / "canvas" / "changes" / str(ROLLOVER) / f"{tenant}.parquet")
    counts = changes.groupby(["file", "action"]).size()
    assert counts.get(("courses", "conclude"), 0) > 0 and counts.get(("courses", "add"), 0) > 0
    assert not changes["action"].eq("delete").any()
    # The term-change sensor recognises the rollover: its runs re-derive the nights from it.
    import dagster as dg

    from sis_pipelines.definitions import defs

    sensor = defs.resolve_sensor_def("term_change_sensor")
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        result = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
        )
    rollover = [
        r for r in result.run_requests if r.tags["sis_pipelines/backfill"].startswith("rollover")
    ]
    assert [r.partition_key for r in rollover] == [
        f"{ROLLOVER}|{tenant}",
        f"{date(2026, 8, 20)}|{tenant}",
    ]


def refuse_closed_sync(data, tenant: str) -> None:
    from sis_pipelines.core.errors import ConfigurationError
    from sis_pipelines.core.lake import Lake
    from sis_pipelines.core.tenants import load_tenants
    from sis_pipelines.gpb.sync import sync_grades
    from sis_pipelines.services.connect import Services

    lake = Lake.at(data)
    courses = pd.read_parquet(lake.canvas_file("courses", date(2026, 7, 31), tenant))
    spring = sorted(courses.loc[courses["term_id"].str.endswith("term-2025-2"), "course_id"])
    config = load_tenants().tenants[tenant]
    with pytest.raises(ConfigurationError, match=r"gpb\.days_after_term"):
        sync_grades(lake, Services(lake), tenant, config, courses=spring[:1])
