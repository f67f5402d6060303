"""Deltas against the last applied night, the deletion guard and the zip's rules."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import pandas as pd
import pytest

from sis_pipelines.canvas.delta import compute_delta, deletion_guard
from sis_pipelines.canvas.package import build_zip, check_zip, read_zip
from sis_pipelines.core.tenants import Canvas

CFG = Canvas(source="simulator")
TERM_END = "2027-01-15T00:00:00Z"


def users(*ids: str, **changes) -> pd.DataFrame:
    rows = [
        {
            "user_id": i,
            "login_id": i.lower(),
            "first_name": "A",
            "last_name": changes.get(i, "B"),
            "email": None,
            "declared_user_type": "student",
            "status": "active",
        }
        for i in ids
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "user_id",
            "login_id",
            "first_name",
            "last_name",
            "email",
            "declared_user_type",
            "status",
        ],
    )


def enrollments(*pairs: tuple[str, str], end: str = TERM_END) -> pd.DataFrame:
    rows = [
        {
            "course_id": c,
            "section_id": c,
            "user_id": u,
            "role": "student",
            "status": "active",
            "start_date": "2026-08-15T00:00:00Z",
            "end_date": end,
            "term_end_date": end,
        }
        for u, c in pairs
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "course_id",
            "section_id",
            "user_id",
            "role",
            "status",
            "start_date",
            "end_date",
            "term_end_date",
        ],
    )


def state(u: pd.DataFrame, e: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"users": u, "enrollments": e}


def actions(delta) -> dict[str, str]:
    return dict(
        zip(
            delta.changes["file"] + ":" + delta.changes["sis_id"],
            delta.changes["action"],
            strict=True,
        )
    )


def test_the_first_night_adds_everything():
    delta = compute_delta(
        None, state(users("U1"), enrollments(("U1", "C1"))), CFG, date(2026, 11, 21)
    )
    assert actions(delta) == {"users:U1": "add", "enrollments:C1|U1|student": "add"}


def test_add_change_and_remove():
    before = state(users("U1", "U2", "U3"), enrollments(("U1", "C1"), ("U2", "C1")))
    after = state(users("U1", "U2", "U4", U2="Renamed"), enrollments(("U1", "C1"), ("U4", "C1")))
    delta = compute_delta(before, after, CFG, date(2026, 11, 21))
    assert actions(delta) == {
        "users:U2": "update",
        "users:U4": "add",
        "users:U3": "suspend",
        "enrollments:C1|U4|student": "add",
        "enrollments:C1|U2|student": "delete",
    }
    reasons = dict(zip(delta.changes["sis_id"], delta.changes["reason"], strict=True))
    assert reasons["U2"] == "changed: last_name"
    removed = delta.files["users"].set_index("user_id").loc["U3"]
    assert removed["status"] == "suspended" and removed["login_id"] == "u3"


def test_removed_users_are_deleted_when_the_tenant_says_so():
    delta = compute_delta(
        state(users("U1"), enrollments()),
        state(users(), enrollments()),
        Canvas(source="simulator", user_remove_status="deleted"),
        date(2026, 11, 21),
    )
    assert actions(delta) == {"users:U1": "delete"}


def test_after_the_term_ended_a_removal_completes_and_keeps_the_work():
    before = state(users("U1"), enrollments(("U1", "C1")))
    after = state(users("U1"), enrollments())
    assert actions(compute_delta(before, after, CFG, date(2027, 1, 20))) == {
        "enrollments:C1|U1|student": "complete"
    }
    assert actions(compute_delta(before, after, CFG, date(2026, 12, 1))) == {
        "enrollments:C1|U1|student": "delete"
    }


def test_reenrolment_after_a_drop_is_an_add():
    night1 = state(users("U1"), enrollments(("U1", "C1")))
    night2 = state(users("U1"), enrollments())
    night3 = state(users("U1"), enrollments(("U1", "C1")))
    assert actions(compute_delta(night1, night2, CFG, date(2026, 11, 2))) == {
        "enrollments:C1|U1|student": "delete"
    }
    # night2 was applied, so night3 is measured against it.
    delta = compute_delta(night2, night3, CFG, date(2026, 11, 3))
    assert actions(delta) == {"enrollments:C1|U1|student": "add"}
    assert delta.files["enrollments"]["status"].tolist() == ["active"]


def test_dates_are_always_written_in_full():
    before = state(users("U1"), enrollments(("U1", "C1")))
    after_e = enrollments(("U1", "C1"))
    after_e["end_date"] = "2027-01-10T00:00:00Z"
    delta = compute_delta(before, state(users("U1"), after_e), CFG, date(2026, 11, 21))
    row = delta.files["enrollments"].iloc[0]
    assert row["start_date"] == "2026-08-15T00:00:00Z" and row["end_date"] == "2027-01-10T00:00:00Z"


def test_nothing_changed_means_an_empty_delta():
    s = state(users("U1"), enrollments(("U1", "C1")))
    assert compute_delta(s, s, CFG, date(2026, 11, 21)).empty


@pytest.mark.parametrize(("removed", "passes"), [(5, True), (6, False)])
def test_the_guard_blocks_just_above_the_threshold_and_passes_at_it(removed, passes):
    # Students suspended mid-term (they still had a class whose term runs): harmful.
    ids = [f"U{i:03d}" for i in range(100)]
    before = state(users(*ids), enrollments(*[(i, "C1") for i in ids]))
    after = state(users(*ids[removed:]), enrollments(*[(i, "C1") for i in ids[removed:]]))
    delta = compute_delta(before, after, CFG, date(2026, 11, 21))
    passed, findings = deletion_guard(before, after, delta, 0.05)
    assert passed is passes
    assert {f.file: f.removals for f in findings}["users"] == removed
    assert {f.file: f.removals for f in findings}["enrollments"] == removed


def test_graduates_leaving_after_their_last_term_are_not_counted():
    ids = [f"U{i:03d}" for i in range(100)]
    before = state(users(*ids), enrollments(*[(i, "C1") for i in ids]))
    after = state(users(*ids[50:]), enrollments(*[(i, "C2") for i in ids[50:]]))
    delta = compute_delta(before, after, CFG, date(2027, 7, 1))  # C1's term ended in January
    passed, findings = deletion_guard(before, after, delta, 0.05)
    assert passed
    assert {f.file: f.removals for f in findings} == {
        "users": 0,
        "courses": 0,
        "sections": 0,
        "enrollments": 0,
    }
    reasons = set(delta.changes.loc[delta.changes["file"] == "users", "reason"])
    assert reasons == {"left the SIS after its last term ended"}


def test_an_empty_users_file_is_blocked():
    before = state(users("U1", "U2"), enrollments(("U1", "C1")))
    after = state(users(), enrollments())
    passed, findings = deletion_guard(
        before, after, compute_delta(before, after, CFG, date(2026, 11, 21)), 0.05
    )
    assert not passed
    assert {f.file: f.removals for f in findings}["users"] == 1  # U1 was mid-term


def test_the_zip_holds_only_non_empty_csvs_with_headers():
    data = build_zip({"users": users("U1", "Ünïcødé"), "enrollments": enrollments()})
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.namelist() == ["users.csv"]
        text = z.read("users.csv").decode("utf-8")
    assert (
        text.splitlines()[0]
        == "user_id,login_id,first_name,last_name,email,declared_user_type,status"
    )
    assert "Ünïcødé" in text
    assert read_zip(data)["users"][0]["user_id"] == "U1"


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (users("U1").assign(login_id=None), "login_id is required"),
        (users("U1").assign(status="baleeted"), 'Improper status "baleeted"'),
        (
            enrollments(("U1", "C1")).assign(start_date="15/08/2026").drop(columns="term_end_date"),
            "start_date '15/08/2026' is not ISO 8601",
        ),
    ],
)
def test_the_canvas_rules_refuse_bad_rows(frame, problem):
    buffer = io.BytesIO()
    name = "users" if "login_id" in frame else "enrollments"
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(f"{name}.csv", frame.to_csv(index=False))
    assert any(problem in p for p in check_zip(buffer.getvalue()))
