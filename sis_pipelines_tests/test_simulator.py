"""The synthetic district: deterministic, realistic, changing night by night."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date

from sis_pipelines.simulator.__main__ import main as simulator_main
from sis_pipelines.simulator.district import District


def test_same_arguments_same_district():
    a = District(400, 3).snapshot(date(2026, 11, 21))
    b = District(400, 3).snapshot(date(2026, 11, 21))
    for name in a:
        assert a[name].equals(b[name]), name


def test_realistic_ratios():
    snap = District(3000, 1).snapshot(date(2026, 11, 21))
    users = snap["users"]
    students = (users["role"] == "student").sum()
    teachers = (users["role"] == "teacher").sum()
    guardians = (users["role"] == "guardian").sum()
    assert 2700 < students < 3300
    assert 10 <= students / teachers <= 20
    assert guardians == students
    per_student = (snap["enrollments"]["role"] == "student").sum() / students
    assert 8 <= per_student <= 14  # 4 to 7 classes per semester, both semesters of the year
    assert len(snap["demographics"]) == students
    assert snap["enrollments"]["sourcedId"].is_unique


def test_nights_differ_by_arrivals_withdrawals_and_schedule_changes():
    district = District(5000, 2)
    n1, n2 = district.snapshot(date(2026, 11, 20)), district.snapshot(date(2026, 11, 30))
    users1, users2 = set(n1["users"]["sourcedId"]), set(n2["users"]["sourcedId"])
    assert users2 - users1 and users1 - users2
    e1, e2 = set(n1["enrollments"]["sourcedId"]), set(n2["enrollments"]["sourcedId"])
    assert e2 - e1 and e1 - e2


def test_the_school_year_rolls_over_on_1_august():
    district = District(300, 2)
    before, after = district.snapshot(date(2027, 7, 31)), district.snapshot(date(2027, 8, 1))
    assert set(before["academic_sessions"]["sourcedId"]) == {
        "sy-2026",
        "term-2026-1",
        "term-2026-2",
        "gp-2026-1-1",
        "gp-2026-1-2",
        "gp-2026-2-1",
        "gp-2026-2-2",
    }
    assert "sy-2027" in set(after["academic_sessions"]["sourcedId"])
    assert not set(before["classes"]["sourcedId"]) & set(after["classes"]["sourcedId"])


def test_export_writes_a_oneroster_csv_bundle(tmp_path, capsys):
    assert (
        simulator_main(
            [
                "export",
                "--vendor",
                "genesis",
                "--students",
                "200",
                "--seed",
                "4",
                "--night",
                "2026-11-21",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    bundle = tmp_path / "oneroster-2026-11-21.zip"
    assert str(bundle) in capsys.readouterr().out
    with zipfile.ZipFile(bundle) as z:
        manifest = dict(csv.reader(io.StringIO(z.read("manifest.csv").decode())))
        assert manifest["oneroster.version"] == "1.1"
        assert manifest["file.users"] == "bulk"
        users = list(csv.DictReader(io.StringIO(z.read("users.csv").decode())))
    snapshot = District(200, 4).snapshot(date(2026, 11, 21))
    assert len(users) == len(snapshot["users"])
    assert {u["sourcedId"] for u in users} == set(snapshot["users"]["sourcedId"])
