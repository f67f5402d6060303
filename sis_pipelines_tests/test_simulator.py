"""The synthetic district: deterministic, realistic, changing night by night."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest

from sis_pipelines.simulator.__main__ import main as simulator_main
from sis_pipelines.simulator.canvas_gradebook import assignments, submission
from sis_pipelines.simulator.district import District
from sis_pipelines.simulator.vendors import VENDORS

from .support import NIGHT


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


def test_serve_exposes_a_stateful_gradebook(tmp_path):
    import subprocess
    import sys

    import httpx

    state = tmp_path / "gradebook.json"
    args = [sys.executable, "-m", "sis_pipelines.simulator", "serve", "--vendor", "infinite_campus"]
    args += ["--students", "60", "--port", "0", "--gradebook-state", str(state)]
    args += ["--vendor-authorization", "k:s"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        lines = {}
        for line in proc.stdout:  # type: ignore[union-attr]
            key, _, value = line.strip().partition(": ")
            lines[key] = value.strip()
            if key == "client id":
                break
        gradebook, token_url = lines["gradebook"], lines["token URL"]
        assert gradebook.endswith("/ims/oneroster/gradebook/v1p2")
        token = httpx.post(
            token_url, data={"grant_type": "client_credentials"}, auth=("demo", "demo-secret")
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "x-vendor-authorization": "k:s"}
        category = {
            "category": {
                "sourcedId": "cat-x",
                "status": "active",
                "dateLastModified": "2026-11-21T00:00:00Z",
                "title": "Labs",
            }
        }
        put = httpx.put(f"{gradebook}/categories/cat-x", json=category, headers=headers)
        assert put.status_code == 201
        got = httpx.get(f"{gradebook}/categories/cat-x", headers=headers)
        assert got.json()["category"]["title"] == "Labs"
        bare = httpx.get(
            f"{gradebook}/categories", headers={"Authorization": headers["Authorization"]}
        )
        assert bare.status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "cat-x" in state.read_text()


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_pages_render_the_same_json_as_records(vendor, small_district):
    """The columnar page renderer the simulator serves with says exactly what the
    record-by-record renderer says, for every collection, version and vendor quirk."""
    import orjson

    from sis_pipelines.simulator.render import Renderer
    from sis_pipelines.simulator.render_page import PageRenderer

    snapshot = small_district.snapshot(NIGHT)
    users = snapshot["users"].copy()
    users.loc[users.index[0], "givenName"] = 'Zoë "Z" \\ O\'Brien\n\t\x01'
    users["orgSourcedIds"] = [[] if i == 1 else v for i, v in enumerate(users["orgSourcedIds"])]
    users.loc[users.index[2], "middleName"] = None
    snapshot["users"] = users
    for version in ("1.1", "1.2"):
        profile = VENDORS[vendor].with_(version=version)
        slow, fast = Renderer(profile, "http://h/b"), PageRenderer(profile, "http://h/b")
        for name, frame in snapshot.items():
            expected = [slow.record(name, row) for row in frame.to_dict("records")]
            assert orjson.loads(fast.page(name, frame)) == expected, (vendor, version, name)
            assert fast.page(name, frame.iloc[0:0]) == b"[]"


def test_teachers_grade_something_every_night_of_the_term():
    """Grade passback has something new to send every night, even for a small district."""
    courses = [f"cls-{i}" for i in range(12)]  # about what a 2,000-student demo passes back
    students = [f"stu-{i}" for i in range(20)]
    term = ("2026-08-15", "2027-01-20")
    graded: set[date] = set()
    clock = datetime(2027, 1, 20, 23, 59, tzinfo=UTC)
    for course in courses:
        for assignment in assignments(course, *term, clock):
            for student in students:
                seen = submission(assignment, student, clock)
                if seen and seen.get("graded_at"):
                    graded.add(date.fromisoformat(seen["graded_at"][:10]))
    first_grading = date(2026, 8, 15) + timedelta(days=16)
    nights = {first_grading + timedelta(days=d) for d in range(120)}
    assert not nights - graded
