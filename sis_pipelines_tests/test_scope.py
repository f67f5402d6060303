"""A tenant's scope: which schools, sessions, classes and people go to Canvas, and what a
narrower scope does to what Canvas already holds (concluded through the guard, never deleted)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from sis_pipelines.canvas.delta import compute_delta, deletion_guard
from sis_pipelines.canvas.mapping import map_snapshot
from sis_pipelines.canvas.scope import Scoping, canvas_ids
from sis_pipelines.core.tenants import Canvas, Scope
from sis_pipelines.simulator.district import District

from .support import canonical

NIGHT = date(2026, 11, 21)  # mid-term
DISTRICT = District(2000, 4)  # an elementary, a middle and a high school


@pytest.fixture(scope="module")
def snapshot():
    return canonical(DISTRICT.snapshot(NIGHT))


def mapped(snapshot, **scope):
    cfg = Canvas(source="simulator", scope=Scope(**scope))
    scoping = Scoping(cfg.scope)
    return map_snapshot(dict(snapshot), cfg, NIGHT, scoping), scoping, cfg


def test_a_district_scoped_to_two_schools_provisions_only_those(snapshot):
    two = ["sch-0001", "sch-0003"]
    files, scoping, _ = mapped(snapshot, orgs={"include": two})
    assert set(files["courses"]["account_id"]) == set(two)
    assert set(files["sections"]["section_id"]) == set(
        snapshot["classes"].loc[snapshot["classes"]["schoolSourcedId"].isin(two), "sourcedId"]
    )
    # The district stays an account: the schools' parent.
    assert set(files["accounts"]["account_id"]) == {"district", *two}
    users = snapshot["users"].set_index("sourcedId")
    provisioned = users.loc[files["users"]["user_id"]]
    assert provisioned["orgSourcedIds"].map(lambda orgs: bool(set(orgs) & set(two))).all()
    # Every enrollment's course and user are in scope.
    assert set(files["enrollments"]["course_id"]) <= set(files["courses"]["course_id"])
    assert set(files["enrollments"]["user_id"]) <= set(files["users"]["user_id"])
    # Left out, not lost: listed with the reason, counted per reason.
    listing = scoping.listing()
    out_classes = listing[listing["collection"] == "classes"]
    assert set(out_classes["reason"]) == {"school out of scope"}
    assert len(out_classes) + len(files["sections"]) == len(snapshot["classes"])
    assert scoping.counts["orgs: org out of scope"] == 1
    assert scoping.counts["users: orgs out of scope"] > 0


def test_an_org_is_named_by_its_identifier_and_brings_the_orgs_below_it(snapshot):
    files, _, _ = mapped(snapshot, orgs={"exclude": ["1000"]})  # sch-0001's identifier
    assert "sch-0001" not in set(files["courses"]["account_id"])
    everything, _, _ = mapped(snapshot, orgs={"include": ["district"]})
    assert len(everything["sections"]) == len(snapshot["classes"])


def test_class_types_roles_grades_and_sessions(snapshot):
    files, scoping, _ = mapped(
        snapshot,
        class_types={"exclude": ["homeroom"]},
        roles={"exclude": ["guardian"]},
        grades={"include": ["09", "10", "11", "12"]},
    )
    classes = snapshot["classes"].set_index("sourcedId").loc[files["sections"]["section_id"]]
    assert (classes["classType"] != "homeroom").all()
    assert classes["grades"].map(lambda g: g[0] in {"09", "10", "11", "12"}).all()
    assert "observer" not in set(files["users"]["declared_user_type"])
    students = files["users"][files["users"]["declared_user_type"] == "student"]
    grades = snapshot["users"].set_index("sourcedId").loc[students["user_id"], "grades"]
    assert grades.map(lambda g: g[0] in {"09", "10", "11", "12"}).all()
    assert scoping.counts["classes: class type out of scope"] > 0
    spring, _, _ = mapped(snapshot, session_titles={"include": ["Spring 2027"]})
    assert set(spring["terms"]["name"]) == {"Spring 2027"}
    assert set(spring["courses"]["term_id"]) == {"term-2026-2"}
    window, _, _ = mapped(snapshot, sessions_from=date(2027, 2, 1))
    assert set(window["terms"]["name"]) == {"Spring 2027"}


def test_narrowing_the_scope_concludes_through_the_guard_and_never_deletes(snapshot):
    before, _, _ = mapped(snapshot)
    after, scoping, narrow = mapped(snapshot, orgs={"exclude": ["sch-0002"]})
    delta = compute_delta(
        before, after, narrow, NIGHT, out_of_scope=canvas_ids(scoping.listing(), "")
    )
    left = set(before["courses"]["course_id"]) - set(after["courses"]["course_id"])
    assert left
    actions = delta.changes[delta.changes["file"] == "courses"].set_index("sis_id")["action"]
    assert set(actions.loc[sorted(left)]) == {"conclude"}
    reasons = delta.changes[delta.changes["file"] == "courses"]["reason"]
    assert reasons.str.startswith("left the tenant's scope before its term").all()
    assert "delete" not in set(delta.changes["action"])  # the school's account is kept too
    account = delta.changes[delta.changes["file"] == "accounts"].iloc[0]
    assert (account["sis_id"], account["action"]) == ("sch-0002", "keep")
    passed, findings = deletion_guard(before, after, delta, narrow.max_removal_share)
    assert not passed  # a whole school mid-term: the operator decides
    assert {f.file: f.removals for f in findings}["courses"] == len(left)
    sent = delta.files["courses"].set_index("course_id").loc[sorted(left), "status"]
    assert set(sent) == {"completed"}
    enrollments = delta.changes[delta.changes["file"] == "enrollments"]
    assert set(enrollments["action"]) == {"complete"}


def test_no_scope_is_everything(snapshot):
    files, scoping, _ = mapped(snapshot)
    assert scoping.counts == {} and scoping.listing().empty
    assert len(files["sections"]) == len(snapshot["classes"])
    assert isinstance(scoping.listing(), pd.DataFrame)


SCOPED = """
tenants:
  scoped:
    vendor: genesis
    oneroster: {{version: "1.1", source: simulator, students: 2000, seed: 4}}
    canvas:
      source: simulator
      scope: {{orgs: {{{orgs}}}, class_types: {{exclude: [homeroom]}}}}
"""


def test_a_scoped_tenant_through_the_night_and_a_narrower_scope_through_the_guard(workspace):
    import json

    import dagster as dg

    from sis_pipelines.core.lake import Lake
    from sis_pipelines.operate import run_tenant_night

    from .support import latest_meta

    instance, data, tenants = workspace
    night = date(2026, 11, 20)
    tenants.write_text(SCOPED.format(orgs='include: ["sch-0001", "1002"]'))  # 1002: sch-0003
    assert run_tenant_night(instance, "scoped", night).success
    canvas = json.loads((data / "simulator" / "canvas" / "scoped.json").read_text())
    schools = {r["account_id"] for r in canvas["state"]["courses"].values()}
    assert schools == {"sch-0001", "sch-0003"}
    mapping = latest_meta(instance, "canvas/mapping")
    assert mapping["out_of_scope"] > 0
    assert "classes: school out of scope" in mapping["out_of_scope_by_reason"]
    assert mapping["out_of_scope: classes: school out of scope"] > 0
    page = instance.fetch_observations(dg.AssetKey(["tenants", "scoped"]), limit=1).records[0]
    seen = page.asset_observation.metadata
    assert seen["canvas_out_of_scope"].value == mapping["out_of_scope"]
    assert seen["canvas_out_of_scope: classes: school out of scope"].value > 0
    listing = pd.read_parquet(Lake.at(data).out_of_scope(night, "scoped"))
    assert {"school out of scope", "class type out of scope"} <= set(listing["reason"])
    # The district narrows its scope mid-term: the guard stops the conclusions, in one line.
    tenants.write_text(SCOPED.format(orgs='include: ["sch-0001"]'))
    later = night + timedelta(days=1)
    blocked = run_tenant_night(instance, "scoped", later)
    assert not blocked.success
    check = latest_check(instance)
    assert "left the tenant's scope before its term" in check.description
    allowed = run_tenant_night(
        instance, "scoped", later, extra_tags={"sis_pipelines/allow_mass_removal": "true"}
    )
    assert allowed.success, allowed.errors
    canvas = json.loads((data / "simulator" / "canvas" / "scoped.json").read_text())
    left = [r for r in canvas["state"]["courses"].values() if r["account_id"] == "sch-0003"]
    assert left and {r["status"] for r in left} == {"completed"}


def latest_check(instance):
    import dagster as dg

    key = dg.AssetCheckKey(dg.AssetKey(["canvas", "delta"]), "deletion_guard")
    record = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)[0]
    return record.event.dagster_event.event_specific_data
