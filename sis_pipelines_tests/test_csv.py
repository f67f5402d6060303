"""OneRoster CSV bundles: real third-party bundles row by row, delta and absent files, SFTP,
and the simulator's own bundles round-tripped against its REST snapshot."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, timedelta

import asyncssh
import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sis_pipelines.core.nights import latest_complete_night
from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.oneroster.csv_bundle import FILE_NAMES, BundleError, load_bundle, read_collection
from sis_pipelines.oneroster.schemas import referenced_collections
from sis_pipelines.oneroster.validate import validate
from sis_pipelines.operate import run_tenant_night
from sis_pipelines.simulator.district import District
from sis_pipelines.simulator.export import export_bundle

from .realdata import EDFI, MOODLE, MOODLE_BUNDLES, needs_moodle
from .sftp_server import SftpServer

BUNDLES = [*MOODLE_BUNDLES, EDFI]
ORDER = ["orgs", "academic_sessions", "courses", "classes", "users", "enrollments", "demographics"]


def count_rows(bundle, name: str) -> int:
    """Data rows as any CSV reader sees them: records after the header, blank lines aside."""
    text = bundle.text(name)
    if text is None:
        return 0
    return sum(
        1 for row in list(csv.reader(io.StringIO(text)))[1:] if any(cell.strip() for cell in row)
    )


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.name)
def test_every_real_bundle_is_accounted_for_row_by_row(path):
    bundle = load_bundle(path)
    valid: dict[str, pa.Array] = {}
    for name in ORDER:
        collection = COLLECTIONS[name]
        read = read_collection(bundle, collection, None)
        refs = {r: valid[r] for r in referenced_collections(name)}
        result = validate(collection, read.table, refs, read.rejects)
        valid[name] = pa.array(result.frame["sourcedId"])
        main = f"{FILE_NAMES[name]}.csv"
        for filename, rows in read.rows_in_files.items():
            quarantined_at_read = read.rejected_in(filename)
            assert read.rows_read[filename] + quarantined_at_read == rows, (path.name, filename)
        # Validation moves rows of the main file from read to quarantined, never loses one.
        at_validation = len(result.quarantine) - len(read.rejects)
        assert len(result.frame) + at_validation == read.rows_read.get(main, 0), (path.name, name)
        assert read.rows_in_files.get(main, 0) == count_rows(bundle, FILE_NAMES[name])
        assert result.quarantine["reason"].str.len().gt(0).all()


@needs_moodle
def test_the_defects_of_the_moodle_bundle_are_explained_with_file_and_line():
    bundle = load_bundle(MOODLE / "v1p2_full_dataset.zip")
    read = read_collection(bundle, COLLECTIONS["users"], None)
    reasons = read.rejects.reasons
    repaired = set(read.rejects.repairs.to_frame()["reason"].astype(str))
    assert (
        "users.csv line 2: dateLastModified: invalid datetime '1/05/2023'; "
        "emptied (optional in OneRoster)"
    ) in repaired
    assert any(r.startswith("userProfiles.csv line 2: not a userProfiles file") for r in reasons)
    users = {u["sourcedId"]: u for u in read.table.to_pylist()}
    mary = users["usr-222-66778899"]
    assert mary["preferredFirstName"] == "MJ"  # from the misspelt prefferedGivenName
    assert mary["role"] == "student"  # from roles.csv
    assert len(users) == 6  # every user of the file, the three with '1/05/2023' repaired
    assert "Password1" not in str(users) and "Password1" not in str(read.rejects.records)


def test_ed_fi_sample_keeps_strings_lists_and_metadata_columns():
    bundle = load_bundle(EDFI)
    orgs = read_collection(bundle, COLLECTIONS["orgs"], None)
    assert len(orgs.rejects) == 0  # empty metadata.* columns are fine
    assert {o["sourcedId"]: o["parentSourcedId"] for o in orgs.table.to_pylist()} == {
        "255901": None,
        "255901001": "255901",
    }
    classes = read_collection(bundle, COLLECTIONS["classes"], None).table.to_pylist()
    assert any(len(c["termSourcedIds"]) == 2 for c in classes)
    users = read_collection(bundle, COLLECTIONS["users"], None).table.to_pylist()
    assert all(u["status"] == "active" for u in users)  # blank status in a bulk file
    assert any(u["userIds"] and '"Local"' in u["userIds"] for u in users)
    ids = [
        s
        for s in read_collection(bundle, COLLECTIONS["academic_sessions"], None)
        .table["sourcedId"]
        .to_pylist()
    ]
    assert all(isinstance(i, str) for i in ids)


def bundle_zip(
    files: dict[str, str], manifest: str | None = "manifest.version,1.0\noneroster.version,1.1\n"
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        if manifest is not None:
            z.writestr("manifest.csv", "propertyName,value\n" + manifest)
        for name, text in files.items():
            z.writestr(name, text)
    return buffer.getvalue()


def test_bundles_without_manifest_or_of_version_1_0_are_refused(tmp_path):
    (tmp_path / "none.zip").write_bytes(bundle_zip({"orgs.csv": "sourcedId\n"}, manifest=None))
    with pytest.raises(BundleError, match=r"no manifest\.csv"):
        load_bundle(tmp_path / "none.zip")
    (tmp_path / "old.zip").write_bytes(bundle_zip({}, manifest="oneroster.version,1.0\n"))
    with pytest.raises(BundleError, match=r"only 1\.1 and 1\.2"):
        load_bundle(tmp_path / "old.zip")


def test_header_case_crlf_bom_quoted_lists_and_dates(tmp_path):
    classes = "\ufeffSOURCEDID,Status,DATELASTMODIFIED,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods,vendor.room\r\n"
    classes += 'c1,,2024-01-02,Math,"09,10",k1,M1,scheduled,,s1,"t1, t2",Math,,"1,2",R12\r\n'
    classes += "c2,active,2024-01-02 10:11:12,Art,09,k1,A1,scheduled,,s1,t1,Art,,1,\r\n"
    classes += "c3,active,yesterday,Bad,09,k1,B1,scheduled,,s1,t1,Art,,1,\r\n"
    data = bundle_zip({"classes.csv": classes})
    read = read_collection(load_bundle("drop.zip", data=data), COLLECTIONS["classes"], None)
    rows = {r["sourcedId"]: r for r in read.table.to_pylist()}
    assert (
        rows["c1"]["grades"] == ["09", "10"]
        and rows["c1"]["termSourcedIds"] == ["t1", "t2"]
        and rows["c1"]["status"] == "active"
    )
    assert rows["c1"]["metadata"] == '{"vendor.room":"R12"}'
    assert rows["c2"]["dateLastModified"].hour == 10
    # An unreadable optional field is emptied, the record kept, the SIS's value recorded.
    assert read.rejects.reasons == [] and rows["c3"]["dateLastModified"] is None
    repairs = read.rejects.repairs.to_frame().astype(str).to_dict("records")
    assert repairs == [
        {
            "sourcedId": "c3",
            "field": "dateLastModified",
            "value": "yesterday",
            "reason": "classes.csv line 4: dateLastModified: invalid datetime 'yesterday'; "
            "emptied (optional in OneRoster)",
        }
    ]


TENANT = """
tenants:
  csv-a:
    vendor: generic
    oneroster: {{version: "1.1", source: csv, path: "{path}"{extra}}}
"""


def test_a_csv_tenant_produces_the_same_assets_as_a_rest_tenant(workspace, tmp_path):
    instance, data, tenants = workspace
    night = latest_complete_night()
    district = District(200, 17)
    drops = tmp_path / "drops"
    export_bundle(district, night, drops)
    tenants.write_text(
        TENANT.format(path=drops, extra="")
        + """
  rest-twin:
    vendor: genesis
    oneroster: {version: "1.1", source: simulator, students: 200, seed: 17}
"""
    )
    assert run_tenant_night(instance, "csv-a", night, select="group:oneroster").success
    assert run_tenant_night(instance, "rest-twin", night, select="group:oneroster").success
    from sis_pipelines.simulator.export import CSV_FILES

    for name in ORDER:
        csv_table = pq.read_table(
            data / "oneroster" / name / str(night) / "csv-a.parquet"
        ).to_pandas()
        rest_table = pq.read_table(
            data / "oneroster" / name / str(night) / "rest-twin.parquet"
        ).to_pandas()
        columns = [
            c for c in CSV_FILES[name][1] if c in csv_table.columns and c not in ("password",)
        ]
        left = csv_table[columns].sort_values("sourcedId").reset_index(drop=True)
        right = rest_table[columns].sort_values("sourcedId").reset_index(drop=True)
        pd.testing.assert_frame_equal(left, right, check_dtype=False, obj=name)
        assert (
            pq.read_table(data / "quarantine" / name / str(night) / "csv-a.parquet").num_rows == 0
        )


def test_delta_files_apply_on_the_previous_night_and_absent_files_keep_it(workspace, tmp_path):
    instance, data, tenants = workspace
    night2 = latest_complete_night()
    night1 = night2 - timedelta(days=1)
    drops = tmp_path / "drops"
    export_bundle(District(150, 4), night1, drops)
    users = "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,givenName,familyName\n"
    users += (
        "stu-0000001,active,2026-11-01T00:00:00Z,true,sch-0001,student,renamed,Renamed,Student\n"
    )
    users += "new-user-1,active,2026-11-01T00:00:00Z,true,sch-0001,teacher,newbie,New,Teacher\n"
    users += (
        "stu-0000002,tobedeleted,2026-11-01T00:00:00Z,true,sch-0001,student,gone,Gone,Student\n"
    )
    manifest = "manifest.version,1.0\noneroster.version,1.1\nfile.users,delta\nfile.orgs,absent\nfile.academicSessions,absent\nfile.courses,absent\nfile.classes,absent\nfile.enrollments,absent\nfile.demographics,absent\n"
    (drops / f"delta-{night2.strftime('%Y%m%d')}.zip").write_bytes(
        bundle_zip({"users.csv": users}, manifest)
    )
    tenants.write_text(TENANT.format(path=drops, extra=""))
    assert run_tenant_night(instance, "csv-a", night1, select="group:oneroster").success
    assert run_tenant_night(instance, "csv-a", night2, select="group:oneroster").success
    before = (
        pq.read_table(data / "oneroster" / "users" / str(night1) / "csv-a.parquet")
        .to_pandas()
        .set_index("sourcedId")
    )
    after = (
        pq.read_table(data / "oneroster" / "users" / str(night2) / "csv-a.parquet")
        .to_pandas()
        .set_index("sourcedId")
    )
    assert len(after) == len(before) + 1
    assert after.loc["stu-0000001", "givenName"] == "Renamed"
    assert after.loc["stu-0000002", "status"] == "tobedeleted"
    assert after.loc["new-user-1", "role"] == "teacher"
    orgs1 = pq.read_table(data / "oneroster" / "orgs" / str(night1) / "csv-a.parquet")
    orgs2 = pq.read_table(data / "oneroster" / "orgs" / str(night2) / "csv-a.parquet")
    assert orgs1.equals(orgs2)
    record = instance.fetch_materializations(
        __import__("dagster").AssetKey(["oneroster", "users"]), limit=1
    ).records[0]
    meta = record.asset_materialization.metadata
    assert meta["csv_mode"].value == "delta" and meta["bundle"].value.endswith(
        f"delta-{night2.strftime('%Y%m%d')}.zip"
    )


def test_a_bundle_over_sftp(workspace, tmp_path, monkeypatch):
    instance, data, tenants = workspace
    night = latest_complete_night()
    root = tmp_path / "sftp-root"
    (root / "outbox").mkdir(parents=True)
    export_bundle(District(120, 6), night, root / "outbox")
    monkeypatch.setenv("SFTP_PASSWORD", "s3cret-sftp")
    with SftpServer(root, "district", password="s3cret-sftp") as server:
        path = f"sftp://district@127.0.0.1:{server.port}/outbox"
        tenants.write_text(
            TENANT.format(
                path=path,
                extra=f', sftp_password_env: SFTP_PASSWORD, sftp_host_key: "{server.host_key_line}"',
            )
        )
        outcome = run_tenant_night(instance, "csv-a", night, select="group:oneroster")
        assert outcome.success, outcome.errors
        assert server.logins
        users = pq.read_table(data / "oneroster" / "users" / str(night) / "csv-a.parquet")
        assert users.num_rows == len(District(120, 6).snapshot(night)["users"])
        record = instance.fetch_materializations(
            __import__("dagster").AssetKey(["oneroster", "users"]), limit=1
        ).records[0]
        assert (
            record.asset_materialization.metadata["bundle"].value
            == f"sftp://district@127.0.0.1/outbox/oneroster-{night}.zip"
        )
        # A server whose host key is not the configured one gets no password.
        other = (
            asyncssh.generate_private_key("ssh-ed25519")
            .export_public_key("openssh")
            .decode()
            .split()
        )
        tenants.write_text(
            TENANT.format(
                path=path,
                extra=f', sftp_password_env: SFTP_PASSWORD, sftp_host_key: "{other[0]} {other[1]}"',
            )
        )
        logins = len(server.logins)
        refused = run_tenant_night(
            instance, "csv-a", night - timedelta(days=1), select="key:oneroster/orgs"
        )
        assert not refused.success
        assert len(server.logins) == logins
        assert "s3cret-sftp" not in " ".join(refused.errors)


def test_an_sftp_path_needs_a_host_key():
    from sis_pipelines.core.tenants import TenantsFileError, parse_tenants

    with pytest.raises(TenantsFileError, match="sftp_host_key"):
        parse_tenants(TENANT.format(path="sftp://u@h/d", extra=", sftp_password_env: P"))


def test_no_bundle_for_the_night_is_a_clear_failure(workspace, tmp_path):
    instance, _, tenants = workspace
    (tmp_path / "drops").mkdir()
    tenants.write_text(TENANT.format(path=tmp_path / "drops", extra=""))
    outcome = run_tenant_night(instance, "csv-a", date(2026, 9, 1), select="key:oneroster/orgs")
    assert not outcome.success
    assert "no bundle for night 2026-09-01" in " ".join(outcome.errors)
    assert "tenant 'csv-a', orgs, night 2026-09-01" in " ".join(outcome.errors)


# What each real bundle keeps: every record with its sourcedId and its required references
# (orgs, sessions, classes, users, enrollments, demographics; courses are absent from the Moodle
# bundles' manifests).
KEPT = {
    "Test_full_data_set.zip": {"orgs": 1, "academic_sessions": 5, "classes": 2, "users": 6, "enrollments": 6},
    "Test_minimal_data_set.zip": {"orgs": 1, "academic_sessions": 5, "classes": 2, "users": 6, "enrollments": 6},
    "oneroster_test_data.zip": dict.fromkeys(ORDER, 1),
    "v1p2_full_dataset.zip": {"orgs": 1, "academic_sessions": 5, "classes": 2, "users": 6, "enrollments": 6},
    "edfi-lms-toolkit-oneroster-v1p1": {
        "orgs": 2, "academic_sessions": 3, "courses": 2, "classes": 2, "users": 10,
        "enrollments": 24, "demographics": 8,
    },
}  # fmt: skip


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.name)
def test_every_real_bundle_keeps_every_usable_record(workspace, path):
    instance, data, tenants = workspace
    version = "1.2" if "v1p2" in path.name else "1.1"
    tenants.write_text(
        f"""
tenants:
  csv-a:
    vendor: generic
    oneroster: {{version: "{version}", source: csv, path: "{path}"}}
    privacy: {{demographics: true}}
"""
    )
    night = latest_complete_night()
    outcome = run_tenant_night(instance, "csv-a", night, select="group:oneroster")
    assert outcome.success, outcome.errors
    kept = {
        name: pq.read_table(data / "oneroster" / name / str(night) / "csv-a.parquet").num_rows
        for name in ORDER
    }
    assert kept == {name: KEPT[path.name].get(name, 0) for name in ORDER}
    repairs = {
        name: pq.read_table(data / "repairs" / name / str(night) / "csv-a.parquet").to_pylist()
        for name in ORDER
    }
    for name, rows in repairs.items():
        for row in rows:  # every repair names its record, field, the SIS's value and why
            assert row["sourcedId"] and row["field"] and row["reason"], (name, row)
    if path.name == "v1p2_full_dataset.zip":
        dates = [r for r in repairs["users"] if r["field"] == "dateLastModified"]
        assert {r["value"] for r in dates} == {"1/05/2023", "15/06/2023"}  # d/m/Y, as sent
        assert all(r["reason"].startswith("users.csv line ") for r in dates)
        [parent] = repairs["orgs"]
        assert (parent["field"], parent["value"]) == ("parentSourcedId", "org-sch-222-3456")
        [scheduled] = repairs["classes"]
        assert (scheduled["field"], scheduled["value"]) == ("classType", "Scheduled")
        classes = pq.read_table(data / "oneroster" / "classes" / str(night) / "csv-a.parquet")
        assert set(classes["classType"].to_pylist()) == {"scheduled", "homeroom"}
        key = dg.AssetCheckKey(dg.AssetKey(["oneroster", "users"]), "repairs")
        [check] = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
        evaluation = check.event.dagster_event.event_specific_data
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
        assert "dateLastModified: invalid datetime '…'" in evaluation.metadata["top_reasons"].value


@needs_moodle
def test_a_first_night_without_courses_still_provisions_its_classes(workspace):
    """The Moodle 1.2 bundle marks courses absent: in course_mode class a Canvas course is a
    class, so the active class, its section and its enrollments reach Canvas."""
    instance, data, tenants = workspace
    path = MOODLE / "v1p2_full_dataset.zip"
    tenants.write_text(
        f"""
tenants:
  csv-a:
    vendor: generic
    oneroster: {{version: "1.2", source: csv, path: "{path}"}}
    canvas: {{source: simulator, account_id: 1, course_mode: class}}
"""
    )
    night = latest_complete_night()
    outcome = run_tenant_night(instance, "csv-a", night, select="group:oneroster or group:canvas")
    assert outcome.success, outcome.errors
    changes = pq.read_table(data / "canvas" / "changes" / str(night) / "csv-a.parquet").to_pandas()
    added = changes[changes["action"] == "add"].groupby("file")["sis_id"].apply(set).to_dict()
    assert added["courses"] == added["sections"] == {"cls-222-123456"}
    assert len(added["enrollments"]) == 3 and len(added["users"]) == 6


def test_a_drop_that_would_inflate_too_far_is_refused_before_it_is_read(workspace, tmp_path):
    """A zip bomb (a member compressing a thousand times) and a drop above the tenant's
    max_drop_bytes are refused in one line, before a byte is inflated, and nothing is stored."""
    import zipfile

    instance, data, tenants = workspace
    night = latest_complete_night()
    drops = tmp_path / "drops"
    drops.mkdir()
    bomb = drops / f"oneroster-{night}.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.csv", "propertyName,value\noneroster.version,1.1\n")
        z.writestr("users.csv", "sourcedId\n" + "a" * 30_000_000)
    assert bomb.stat().st_size < 200_000
    tenants.write_text(TENANT.format(path=drops, extra=""))
    refused = run_tenant_night(instance, "csv-a", night, select="key:oneroster/orgs")
    assert not refused.success
    assert "users.csv would inflate" in " ".join(refused.errors)
    assert "no real export does" in " ".join(refused.errors)
    assert not (data / "oneroster" / "orgs" / str(night) / "csv-a.parquet").exists()
    # A real bundle, above the tenant's own limit.
    bomb.unlink()
    export_bundle(District(120, 6), night, drops)
    tenants.write_text(TENANT.format(path=drops, extra=", max_drop_bytes: 1000"))
    refused = run_tenant_night(instance, "csv-a", night, select="key:oneroster/orgs")
    assert not refused.success
    assert "above the tenant's max_drop_bytes" in " ".join(refused.errors)
    assert not (data / "oneroster" / "orgs" / str(night) / "csv-a.parquet").exists()


def test_a_drop_is_read_as_it_was_hashed_even_if_replaced_while_the_night_reads_it(tmp_path):
    """The zip is copied to a file of ours as it is hashed (on disk, not in memory): a drop
    replaced, or rewritten in place, after it was located is not what the night reads."""
    import hashlib

    from sis_pipelines.oneroster.csv_source import locate_local

    night = date(2026, 11, 20)
    drops = tmp_path / "drops"
    path = export_bundle(District(60, 3), night, drops)
    before = path.read_bytes()
    located = locate_local(str(drops), night)
    other = export_bundle(District(90, 4), night, tmp_path / "other")
    path.write_bytes(other.read_bytes())  # rewritten in place, as an SFTP upload does
    assert located.sha256 == hashlib.sha256(before).hexdigest()
    expected = load_bundle(path, data=before)
    for name in ("users", "enrollments"):
        file = f"{FILE_NAMES[name].lower()}.csv"
        assert located.bundle.files[file] == expected.files[file]
        with located.bundle.open(file) as fh:
            assert fh.read() == expected.files[file]


def test_a_folder_drop_is_hashed_in_name_order_and_read_file_by_file(tmp_path):
    import hashlib

    from sis_pipelines.oneroster.csv_source import locate_local

    night = date(2026, 11, 20)
    folder = tmp_path / f"oneroster-{night}"
    with zipfile.ZipFile(export_bundle(District(60, 3), night, tmp_path / "zip")) as z:
        z.extractall(folder)
    located = locate_local(str(tmp_path), night)
    files = sorted(folder.glob("*.csv"))
    assert located.name == str(folder)
    assert located.sha256 == hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    assert located.bundle.files["users.csv"] == (folder / "users.csv").read_bytes()
    with located.bundle.open("enrollments.csv") as fh:
        assert fh.read() == (folder / "enrollments.csv").read_bytes()
