"""The CSV Gateway: a district without a OneRoster API drops Canvas-format SIS CSV files on
SFTP each night; they reach the simulated Canvas through the same delta, deletion guard,
package, upload and tracking as a OneRoster tenant's night, rows Canvas would refuse kept with
file, line, column and reason."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow.parquet as pq
import pytest

from sis_pipelines.canvas.compare import columns_of, layout_of
from sis_pipelines.canvas.delta import key_and_values
from sis_pipelines.canvas.fingerprint import Layout
from sis_pipelines.cli import main
from sis_pipelines.core.lake import Lake
from sis_pipelines.core.nights import latest_complete_night
from sis_pipelines.core.tenants import TenantsFileError, parse_tenants
from sis_pipelines.operate import check_connections, evaluate_tenant, run_tenant_night
from sis_pipelines.simulator.plugin import canvas_simulator

from .sftp_server import SftpServer

TENANT = """
tenants:
  gw:
    vendor: generic
    canvas_csv: {{path: "{path}", sftp_password_env: SFTP_PASSWORD, sftp_host_key: "{host_key}"}}
    canvas: {{source: simulator, account_id: 1}}
"""
HEADERS = {
    "accounts.csv": ["account_id", "parent_account_id", "name", "status"],
    "terms.csv": ["term_id", "name", "status", "start_date", "end_date"],
    "courses.csv": ["course_id", "short_name", "long_name", "account_id", "term_id", "status"],
    "sections.csv": ["section_id", "course_id", "name", "status", "start_date", "end_date"],
    "users.csv": ["user_id", "login_id", "first_name", "last_name", "email", "status"],
    "enrollments.csv": ["course_id", "section_id", "user_id", "role", "status"],
}


def _drop(students: int, extra: dict[str, list[list[str]]] | None = None) -> dict[str, list]:
    """A district's Canvas-format files: 10 courses, a teacher each, ``students`` students."""
    rows: dict[str, list[list[str]]] = {
        "accounts.csv": [["sch-1", "", "High School", "active"]],
        "terms.csv": [
            ["t-2026", "2026-27", "active", "2026-08-15T00:00:00Z", "2027-06-15T00:00:00Z"]
        ],
        "courses.csv": [
            [f"c-{i}", f"C{i}", f"Course {i}", "sch-1", "t-2026", "active"] for i in range(10)
        ],
        "sections.csv": [[f"s-{i}", f"c-{i}", f"Section {i}", "active", "", ""] for i in range(10)],
        "users.csv": [[f"tch-{i}", f"tch{i}", "T", f"Teacher{i}", "", "active"] for i in range(10)]
        + [[f"stu-{n}", f"stu{n}", "S", f"Student{n}", "", "active"] for n in range(students)],
        "enrollments.csv": [
            [f"c-{i}", f"s-{i}", f"tch-{i}", "teacher", "active"] for i in range(10)
        ]
        + [
            [f"c-{n % 10}", f"s-{n % 10}", f"stu-{n}", "student", "active"] for n in range(students)
        ],
    }
    for name, more in (extra or {}).items():
        rows[name] = rows[name] + more
    return rows


def _zip(files: dict[str, list[list[str]]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, rows in files.items():
            text = io.StringIO()
            writer = csv.writer(text)
            writer.writerow(HEADERS[name])
            writer.writerows(rows)
            z.writestr(name, text.getvalue())
    return buffer.getvalue()


@pytest.fixture
def gateway(workspace, tmp_path, monkeypatch):
    instance, data, tenants = workspace
    root = tmp_path / "sftp-root"
    (root / "outbox").mkdir(parents=True)
    monkeypatch.setenv("SFTP_PASSWORD", "s3cret-sftp")
    with SftpServer(root, "district", password="s3cret-sftp") as server:
        tenants.write_text(
            TENANT.format(
                path=f"sftp://district@127.0.0.1:{server.port}/outbox",
                host_key=server.host_key_line,
            )
        )
        yield instance, data, root / "outbox", server


def test_a_canvas_format_drop_over_sftp_reaches_canvas_through_the_guard(gateway, capsys):
    instance, data, outbox, server = gateway
    night2 = latest_complete_night()
    night1, night3 = night2 - timedelta(days=2), night2 - timedelta(days=1)
    (outbox / f"canvas-{night1}.zip").write_bytes(_zip(_drop(200)))
    # The connection check sees the drop (and Canvas) before anything is stored.
    assert check_connections("gw", out=lambda line: None) is False  # no drop for the latest night
    first = run_tenant_night(instance, "gw", night1)
    assert first.success, first.errors
    assert server.logins
    sim = canvas_simulator("gw", Lake.at(str(data)).simulator_state("canvas"))
    assert len(sim.active("users")) == 210 and len(sim.active("enrollments")) == 210
    # Night two: rows Canvas would refuse are kept aside with file, line, column and reason.
    bad = {
        "users.csv": [
            ["stu-900", "", "No", "Login", "", "active"],  # line 213
            ["stu-901", "stu901", "Bad", "Status", "", "enrolled"],  # line 214
            ["stu-0", "stu0-again", "Twice", "Seen", "", "active"],  # line 215
        ],
        "sections.csv": [["s-x", "c-1", "Odd dates", "active", "15/09/2026", ""]],  # line 12
    }
    (outbox / f"canvas-{night3}.zip").write_bytes(_zip(_drop(201, bad)))
    second = run_tenant_night(instance, "gw", night3)
    assert second.success, second.errors
    rejected = pq.read_table(data / "quarantine" / "canvas_csv" / str(night3) / "gw.parquet")
    found = {(r["file"], r["line"], r["column"]) for r in rejected.to_pylist()}
    assert found == {
        ("users.csv", 213, "login_id"),
        ("users.csv", 214, "status"),
        ("users.csv", 215, "user_id"),
        ("sections.csv", 12, "start_date"),
    }
    reasons = " ".join(r["reason"] for r in rejected.to_pylist())
    assert 'Improper status "enrolled"' in reasons and "users.csv line 12" in reasons
    assert len(sim.active("users")) == 211  # one student more, nothing refused imported
    mapped = instance.fetch_materializations(dg.AssetKey(["canvas", "mapping"]), limit=1)
    meta = mapped.records[0].asset_materialization.metadata
    assert meta["rejected_rows"].value == 4 and "users.csv | 214 | status" in meta["rejected"].value
    # The drop is observed, and lineage knows where the rows came from.
    observed = instance.fetch_observations(dg.AssetKey(["canvas_csv", "drop"]), limit=1).records
    assert (
        observed[0]
        .event_log_entry.asset_observation.metadata["drop"]
        .value.endswith(f"canvas-{night3}.zip")
    )
    # Night three: half the students gone; the deletion guard stops it, on purpose it goes.
    (outbox / f"canvas-{night2}.zip").write_bytes(_zip(_drop(100)))
    assert check_connections("gw", out=lambda line: None) is True
    blocked = run_tenant_night(instance, "gw", night2)
    assert not blocked.success
    assert len(sim.active("users")) == 211
    capsys.readouterr()
    assert main(["run", "--tenant", "gw", "--night", str(night2), "--allow-mass-removal"]) == 0
    assert len(sim.active("users")) == 110
    # Its OneRoster assets do not apply: asked for, they say so in one line.
    refused = run_tenant_night(instance, "gw", night2, select="key:oneroster/orgs")
    assert not refused.success
    assert "CSV Gateway tenant" in " ".join(refused.errors)


def test_a_drop_file_left_out_stays_as_the_last_night_had_it(gateway):
    instance, data, outbox, _ = gateway
    night2 = latest_complete_night()
    night1 = night2 - timedelta(days=1)
    (outbox / f"canvas-{night1}.zip").write_bytes(_zip(_drop(50)))
    # Onboarding: the first night mapped, evaluated against an empty Canvas, then run.
    assert (
        main(["run", "--tenant", "gw", "--night", str(night1), "--select", "key:canvas/mapping"])
        == 0
    )
    lines = []
    assert evaluate_tenant("gw", night1, out=lines.append) == 0
    assert "| users | 60 | 0 | 0 | 60 | 0 | 0 |" in lines[0]  # all to create, nothing to remove
    assert (data / "evaluate" / "report" / str(night1) / "gw.md").exists()
    assert run_tenant_night(instance, "gw", night1).success
    only_users = {k: v for k, v in _drop(51).items() if k == "users.csv"}
    (outbox / f"canvas-{night2}.zip").write_bytes(_zip(only_users))
    outcome = run_tenant_night(instance, "gw", night2)
    assert outcome.success, outcome.errors
    sim = canvas_simulator("gw", Lake.at(str(data)).simulator_state("canvas"))
    assert len(sim.active("users")) == 61 and len(sim.active("enrollments")) == 60
    # Dropped or carried, the stored files carry their rows' fingerprints for the delta.
    lake = Lake.at(str(data))
    for kind in ("users", "enrollments"):
        key, values = key_and_values(kind, columns_of(lake.canvas_file(kind, night2, "gw")))
        stored = {layout_of(lake.canvas_file(kind, n, "gw")) for n in (night1, night2)}
        assert stored == {Layout.of(key, values)}


def test_the_tenants_file_takes_one_roster_source():
    with pytest.raises(TenantsFileError, match=r"either oneroster .* or canvas_csv"):
        parse_tenants("tenants:\n  t:\n    vendor: generic\n    canvas: {source: simulator}\n")
    with pytest.raises(TenantsFileError, match="no OneRoster gradebook"):
        parse_tenants(
            "tenants:\n  t:\n    vendor: generic\n    canvas_csv: {path: /drops}\n"
            "    canvas: {source: simulator}\n    gpb: {endpoints: standard}\n"
        )
    with pytest.raises(TenantsFileError, match="sftp_host_key"):
        parse_tenants(
            "tenants:\n  t:\n    vendor: generic\n"
            "    canvas_csv: {path: 'sftp://u@h/d', sftp_password_env: P}\n    canvas: {source: simulator}\n"
        )


def test_the_schedule_runs_a_gateway_tenants_canvas_steps_only(gateway):
    from sis_pipelines.defs.automation.schedules import nightly_schedule
    from sis_pipelines.defs.selection import GATEWAY_SELECTION

    instance, _, _, _ = gateway
    assert main(["tenants", "sync"]) == 0
    from sis_pipelines.definitions import defs

    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime.now(UTC),
        repository_def=defs.get_repository_def(),
    )
    [request] = nightly_schedule.evaluate_tick(context).run_requests
    assert list(request.asset_selection) == GATEWAY_SELECTION


EVERY_TYPE = {
    "xlists.csv": (["xlist_course_id", "section_id", "status"], [["c-0", "s-1", "active"]]),
    "admins.csv": (
        ["user_id", "account_id", "role", "status"],
        [["tch-0", "sch-1", "AccountAdmin", "active"]],
    ),
    "group_categories.csv": (
        ["group_category_id", "account_id", "course_id", "category_name", "status"],
        [["gc-1", "", "c-0", "Projects", "active"]],
    ),
    "groups.csv": (
        ["group_id", "group_category_id", "account_id", "course_id", "name", "status"],
        [["g-1", "gc-1", "sch-1", "", "Team 1", "available"]],
    ),
    "group_memberships.csv": (["group_id", "user_id", "status"], [["g-1", "stu-0", "accepted"]]),
    "user_observers.csv": (["observer_id", "student_id", "status"], [["tch-1", "stu-1", "active"]]),
    "logins.csv": (
        ["user_id", "login_id", "authentication_provider_id", "existing_user_id"],
        [["stu-0-sso", "stu0@district.org", "google", "stu-0"]],
    ),
}


def _every_type(files: dict[str, list[list[str]]], extra: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, (header, rows) in {
            **{n: (HEADERS[n], r) for n, r in files.items()},
            **extra,
        }.items():
            text = io.StringIO()
            csv.writer(text).writerows([header, *rows])
            z.writestr(name, text.getvalue())
    return buffer.getvalue()


def test_a_drop_of_every_canvas_file_type_reaches_canvas(gateway):
    """Every file type Canvas's SIS import documents goes through a night in Canvas's order:
    the ones Canvas keeps (cross-lists, admins, groups, observers) through the delta, the ones
    it takes as instructions (logins, change_sis_id) whole, the night they come only; a
    conversion's renames reach Canvas before the files that use the new ids."""
    instance, data, outbox, _ = gateway
    night2 = latest_complete_night()
    night1 = night2 - timedelta(days=1)
    (outbox / f"canvas-{night1}.zip").write_bytes(_every_type(_drop(20), EVERY_TYPE))
    first = run_tenant_night(instance, "gw", night1)
    assert first.success, first.errors
    sim = canvas_simulator("gw", Lake.at(str(data)).simulator_state("canvas"))
    assert sim.active("xlists")["s-1"]["xlist_course_id"] == "c-0"
    assert set(sim.active("admins")) == {"tch-0|sch-1|AccountAdmin|"}
    assert sim.active("groups")["g-1"]["group_category_id"] == "gc-1"
    assert set(sim.active("group_memberships")) == {"g-1|stu-0"}
    assert set(sim.active("user_observers")) == {"tch-1|stu-1"}
    assert set(sim.state["logins"]) == {"stu-0-sso|stu0@district.org"}
    lake = Lake.at(str(data))
    with zipfile.ZipFile(io.BytesIO(lake.sis_import_zip(night1, "gw").read_bytes())) as z:
        order = [n.removesuffix(".csv") for n in z.namelist()]
    assert order.index("users") < order.index("logins") < order.index("enrollments")
    assert order.index("sections") < order.index("xlists") < order.index("users")
    # Night two: the district renumbers a course and a user (change_sis_id.csv, the other
    # files already under the new ids); the group membership leaves.
    renamed = _drop(20)
    renamed["courses.csv"][0][0] = "course-0"
    for name in ("sections.csv", "enrollments.csv"):
        for row in renamed[name]:
            row[0] = "course-0" if row[0] == "c-0" else row[0]
    renamed["users.csv"] = [
        ["student-0" if r[0] == "stu-0" else r[0], *r[1:]] for r in renamed["users.csv"]
    ]
    for row in renamed["enrollments.csv"]:
        row[2] = "student-0" if row[2] == "stu-0" else row[2]
    changes = {
        "change_sis_id.csv": (
            ["old_id", "new_id", "type"],
            [["c-0", "course-0", "course"], ["stu-0", "student-0", "user"]],
        ),
        "xlists.csv": (EVERY_TYPE["xlists.csv"][0], [["course-0", "s-1", "active"]]),
        "group_memberships.csv": (EVERY_TYPE["group_memberships.csv"][0], []),
    }
    (outbox / f"canvas-{night2}.zip").write_bytes(_every_type(renamed, changes))
    second = run_tenant_night(instance, "gw", night2)
    assert second.success, second.errors
    with zipfile.ZipFile(io.BytesIO(lake.sis_import_zip(night2, "gw").read_bytes())) as z:
        names = z.namelist()
        sent = z.read("change_sis_id.csv").decode()
    assert names[0] == "change_sis_id.csv" and "logins.csv" not in names
    assert "c-0,course-0" in sent
    assert "course-0" in sim.active("courses") and "c-0" not in sim.state["courses"]
    assert "student-0" in sim.active("users") and "stu-0" not in sim.state["users"]
    # Renamed, not deleted and created again: the enrollments followed the ids.
    assert "s-0|student-0|student" in sim.active("enrollments")
    assert sim.state["group_memberships"]["g-1|student-0"]["status"] == "deleted"
    changes_file = pq.read_table(data / "canvas" / "changes" / str(night2) / "gw.parquet")
    sent_whole = [r for r in changes_file.to_pylist() if r["action"] == "send"]
    assert {r["file"] for r in sent_whole} == {"change_sis_id"}
    assert not [
        r for r in changes_file.to_pylist() if r["file"] == "courses" and r["action"] == "delete"
    ]


def test_a_file_canvas_does_not_know_is_refused_in_one_line(gateway):
    instance, _, outbox, _ = gateway
    night = latest_complete_night()
    odd = {"grades.csv": (["student", "grade"], [["stu-0", "A"]])}
    (outbox / f"canvas-{night}.zip").write_bytes(_every_type(_drop(5), odd))
    outcome = run_tenant_night(instance, "gw", night)
    assert not outcome.success
    [line] = outcome.errors
    assert "grades.csv: header student, grade is not one a Canvas SIS importer takes" in line
    assert "take the file out of the drop" in line


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (["old_id", "new_id", "type"], "change_sis_id"),
        (["account_id", "parent_account_id", "name", "status"], "accounts"),
        (["section_id", "course_id", "name", "status"], "sections"),
        (["xlist_course_id", "section_id", "status"], "xlists"),
        (["user_id", "login_id", "email", "status"], "users"),
        (["user_id", "login_id", "existing_user_id"], "logins"),
        (["course_id", "section_id", "user_id", "role", "status"], "enrollments"),
        (["user_id", "account_id", "role", "status"], "admins"),
        (["group_category_id", "course_id", "category_name", "status"], "group_categories"),
        (["group_id", "group_category_id", "account_id", "name", "status"], "groups"),
        (["group_id", "user_id", "status"], "group_memberships"),
        (["observer_id", "student_id", "status"], "user_observers"),
        (["User_ID", "Login_ID"], "users"),  # Canvas lowercases the header first
        (["student", "grade"], None),
    ],
)
def test_a_file_goes_to_the_first_importer_in_canvas_order_whose_header_test_passes(header, kind):
    from sis_pipelines.canvas.package import identify

    assert identify(header) == kind
