"""What a district asks of Canvas beyond its roster, through a night: cross-listing (the
classes of one course taught by the same teachers in one term at one school become one Canvas
course, and go back when the rule no longer holds), account admins from OneRoster roles, and
how users sign in (SSO providers, integration ids)."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest

from sis_pipelines.core.lake import Lake
from sis_pipelines.core.nights import latest_complete_night
from sis_pipelines.core.tenants import TenantsFileError, parse_tenants
from sis_pipelines.operate import run_tenant_night
from sis_pipelines.simulator.district import District
from sis_pipelines.simulator.export import export_bundle
from sis_pipelines.simulator.plugin import canvas_simulator

TENANT = """
tenants:
  xl:
    vendor: generic
    oneroster: {{version: "1.1", source: csv, path: "{path}"}}
    canvas: {{source: simulator, account_id: 1, crosslist: {rule}}}
"""


def two_nights(tmp_path, district) -> tuple:
    """The district's CSV drops for the last two nights: (drops folder, night1, night2)."""
    drops = tmp_path / "drops"
    night2 = latest_complete_night()
    night1 = night2 - timedelta(days=1)
    for night in (night1, night2):
        export_bundle(district, night, drops)
    return drops, night1, night2


class TwoPeriods:
    """The district with each course's second section taught by its first section's teacher
    (as a teacher takes two periods of one course)."""

    def __init__(self, district: District):
        self.district, self.district_id = district, district.district_id

    def snapshot(self, night):
        snapshot = self.district.snapshot(night)
        enrollments = snapshot["enrollments"].copy()
        teacher = enrollments["role"] == "teacher"
        of_class = enrollments[teacher].set_index("classSourcedId")["userSourcedId"]
        sibling = enrollments.loc[teacher, "classSourcedId"].str.replace(r"-1$", "-0", regex=True)
        takes = teacher & enrollments["classSourcedId"].str.endswith("-1")
        enrollments.loc[takes, "userSourcedId"] = (
            sibling[takes].map(of_class).fillna(enrollments.loc[takes, "userSourcedId"])
        )
        return {**snapshot, "enrollments": enrollments}


def test_sections_of_one_course_teacher_and_term_are_cross_listed_then_sent_back(
    workspace, tmp_path
):
    instance, data, tenants = workspace
    district = TwoPeriods(District(300, 5))
    drops, night1, night2 = two_nights(tmp_path, district)
    tenants.write_text(TENANT.format(path=drops, rule="course_teacher_term"))
    assert run_tenant_night(instance, "xl", night1).success
    sim = canvas_simulator("xl", Lake.at(str(data)).simulator_state("canvas"))
    xlists = sim.active("xlists")
    assert xlists
    snapshot = district.snapshot(night1)
    classes = snapshot["classes"].set_index("sourcedId")
    enrollments = snapshot["enrollments"]
    teachers = (
        enrollments[enrollments["role"] == "teacher"]
        .groupby("classSourcedId")["userSourcedId"]
        .agg(lambda s: tuple(sorted(s)))
    )

    def rule(cls: str) -> tuple:
        row = classes.loc[cls]
        return (
            row["courseSourcedId"],
            row["termSourcedIds"][0],
            row["schoolSourcedId"],
            teachers[cls],
        )

    for section, row in xlists.items():
        target = row["xlist_course_id"]
        assert target < section and rule(target) == rule(section), (section, target)
    # Every class of a group is either the target or cross-listed into it.
    grouped = {}
    for cls in teachers.index.intersection(classes.index):
        grouped.setdefault(rule(cls), []).append(cls)
    expected = sum(len(g) - 1 for g in grouped.values())
    assert len(xlists) == expected
    # The rule turned off: tonight has no cross-list, every section goes back to its course.
    tenants.write_text(TENANT.format(path=drops, rule="none"))
    assert run_tenant_night(instance, "xl", night2).success
    assert not sim.active("xlists")
    assert {r["status"] for r in sim.state["xlists"].values()} == {"deleted"}
    changes = pq.read_table(data / "canvas" / "changes" / str(night2) / "xl.parquet").to_pandas()
    sent_back = changes[changes["file"] == "xlists"]
    assert set(sent_back["action"]) == {"delete"} and len(sent_back) == len(xlists)


def test_cross_listing_needs_a_course_per_class():
    with pytest.raises(TenantsFileError, match="cross-listing needs course_mode class"):
        parse_tenants(
            "tenants:\n  t:\n    vendor: generic\n"
            "    oneroster: {version: '1.1', source: simulator}\n"
            "    canvas: {source: simulator, course_mode: course_term, crosslist: course_teacher_term}\n"
        )


ADMINS = """
tenants:
  ad:
    vendor: generic
    oneroster: {{version: "1.1", source: csv, path: "{path}"}}
    canvas: {{source: simulator, account_id: 1{admins}}}
"""


def test_administrators_become_account_admins_and_leave_when_no_longer_named(workspace, tmp_path):
    """canvas.admins: the SIS's administrators are admins of their school's account (the
    district's staff of the root account), removed when the tenant stops naming them."""
    instance, data, tenants = workspace
    district = District(300, 5)
    drops, night1, night2 = two_nights(tmp_path, district)
    named = ", admins: [{roles: [administrator], account: school, role: AccountAdmin}]"
    tenants.write_text(ADMINS.format(path=drops, admins=named))
    assert run_tenant_night(instance, "ad", night1).success
    sim = canvas_simulator("ad", Lake.at(str(data)).simulator_state("canvas"))
    users = district.snapshot(night1)["users"]
    staff = users[users["role"] == "administrator"]
    expected = {
        f"{u}|{school}|AccountAdmin|"
        for u, school in zip(staff["sourcedId"], staff["primaryOrgSourcedId"], strict=True)
    }
    assert set(sim.active("admins")) == expected and expected
    tenants.write_text(ADMINS.format(path=drops, admins=""))
    assert run_tenant_night(instance, "ad", night2).success
    assert not sim.active("admins")
    assert {r["status"] for r in sim.state["admins"].values()} == {"deleted"}


def test_sign_in_providers_and_integration_ids_reach_canvas_only_when_set(workspace, tmp_path):
    instance, data, tenants = workspace
    district = District(300, 5)
    drops, night1, night2 = two_nights(tmp_path, district)
    tenants.write_text(ADMINS.format(path=drops, admins=""))
    assert run_tenant_night(instance, "ad", night1).success
    lake = Lake.at(str(data))
    with zipfile.ZipFile(io.BytesIO(lake.sis_import_zip(night1, "ad").read_bytes())) as z:
        header = z.read("users.csv").decode().splitlines()[0]
    assert "authentication_provider_id" not in header and "integration_id" not in header
    sign_in = (
        ", authentication_provider_id: google, authentication_provider_by_role: {teacher: saml}"
        ", integration_id_field: identifier"
        ", logins: [{login_id_field: email, authentication_provider_id: google}]"
    )
    tenants.write_text(ADMINS.format(path=drops, admins=sign_in))
    assert run_tenant_night(instance, "ad", night2).success
    sim = canvas_simulator("ad", lake.simulator_state("canvas"))
    users = district.snapshot(night2)["users"].set_index("sourcedId")
    held = sim.active("users")
    for user_id, row in held.items():
        role = users.loc[user_id, "role"]
        assert row["authentication_provider_id"] == ("saml" if role == "teacher" else "google")
        identifier = users.loc[user_id, "identifier"]
        assert row.get("integration_id", "") == ("" if pd.isna(identifier) else str(identifier))
    # A second login (the email, through Google) for each user with an email.
    emails = users.loc[list(held), "email"].dropna()
    logins = sim.state["logins"]
    assert {f"{u}-email|{e}" for u, e in emails.items() if e} == set(logins) and logins
    assert {r["existing_user_id"] for r in logins.values()} <= set(held)
    assert {r["authentication_provider_id"] for r in logins.values()} == {"google"}
    # Turned on, every user already in Canvas is updated once (the sign-in changed); the
    # night's new students added; none removed.
    changes = pq.read_table(data / "canvas" / "changes" / str(night2) / "ad.parquet").to_pandas()
    actions = changes.loc[changes["file"] == "users", "action"]
    assert set(actions) <= {"update", "add"}
    assert (actions == "update").sum() == len(held) - (actions == "add").sum()
