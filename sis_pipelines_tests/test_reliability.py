"""Reliability and security invariants, each a test: faults, crash safety, secrets, bad input,
data minimisation, and the deletion guard under faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sis_pipelines.core.nights import latest_complete_night
from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.oneroster.csv_bundle import BundleError, load_bundle
from sis_pipelines.oneroster.normalise import normalise_page
from sis_pipelines.oneroster.validate import validate
from sis_pipelines.operate import run_tenant_night
from sis_pipelines.simulator.canvas import CanvasSimulator
from sis_pipelines.simulator.server import SimulatorServer
from sis_pipelines.simulator.sis_gradebook import SisGradebook

from .support import NIGHT

ORDER = ["orgs", "academic_sessions", "courses", "classes", "users", "enrollments", "demographics"]
CORPUS = Path(__file__).with_name("corpus")

TWINS = """
tenants:
  calm:
    vendor: {vendor}
    oneroster: {{version: "{version}", source: simulator, students: 200, seed: 5, page_size: 300}}
    privacy: {{demographics: true}}
  stormy:
    vendor: {vendor}
    privacy: {{demographics: true}}
    oneroster:
      version: "{version}"
      source: simulator
      students: 200
      seed: 5
      page_size: 300
      retry_backoff_s: 0.001
      simulator_faults:
        - {{path: /users, status: 429, headers: {{Retry-After: "0"}}, body: "<html><title>Too Many</title></html>", content_type: text/html, times: 2}}
        - {{path: /enrollments, status: 503, times: 2, skip: 1}}
        - {{path: /enrollments, status: 502, times: 1, skip: 4}}
        - {{path: /classes, kind: drop, times: 1, skip: 1}}
        - {{path: /orgs, kind: truncate, times: 1}}
        - {{path: /courses, status: 200, body: "<html>proxy error</html>", content_type: text/html, times: 1}}
        - {{path: /demographics, status: 500, times: 1}}
"""


@pytest.mark.parametrize(("vendor", "version"), [("genesis", "1.1"), ("infinite_campus", "1.2")])
def test_transient_faults_leave_the_snapshot_record_for_record_the_same(workspace, vendor, version):
    instance, data, tenants = workspace
    tenants.write_text(TWINS.format(vendor=vendor, version=version))
    night = latest_complete_night()
    assert run_tenant_night(instance, "calm", night, select="group:oneroster").success
    stormy = run_tenant_night(instance, "stormy", night, select="group:oneroster")
    assert stormy.success, stormy.errors
    for name in ORDER:
        calm_table = pq.read_table(data / "oneroster" / name / str(night) / "calm.parquet")
        stormy_table = pq.read_table(data / "oneroster" / name / str(night) / "stormy.parquet")
        assert calm_table.num_rows > 0
        assert stormy_table.equals(calm_table), name
    retries = instance.fetch_materializations(
        __import__("dagster").AssetKey(["oneroster", "enrollments"]), limit=1
    ).records[0]
    assert retries.asset_materialization.metadata["retries"].value == 3


def test_a_persistent_fault_fails_with_tenant_and_endpoint_and_writes_nothing(workspace):
    instance, data, tenants = workspace
    tenants.write_text(
        """
tenants:
  broken:
    vendor: focus
    oneroster:
      version: "1.1"
      source: simulator
      students: 150
      retry_attempts: 3
      retry_backoff_s: 0.001
      step_retries: 0
      simulator_faults: [{path: /users, status: 503, body: "Focus SIS: maintenance window", content_type: text/plain, times: 1000}]
"""
    )
    night = latest_complete_night()
    outcome = run_tenant_night(instance, "broken", night, select="group:oneroster")
    assert not outcome.success
    message = " ".join(outcome.errors)
    assert (
        "tenant 'broken'" in message
        and "/ims/oneroster/v1p1/users" in message
        and "Focus SIS: maintenance window" in message
    )
    for area in ("oneroster", "quarantine"):
        for name in ("users", "enrollments", "demographics"):
            assert not (data / area / name / str(night)).exists(), (area, name)
    assert (
        data / "oneroster" / "orgs" / str(night) / "broken.parquet"
    ).exists()  # what finished stays


WRITER = textwrap.dedent(
    """
    import sys, pyarrow as pa
    from upath import UPath
    from sis_pipelines.core.storage import atomic_write_table
    path = UPath(sys.argv[1])
    big = pa.table({"sourcedId": [f"id-{i:09d}" for i in range(2_000_000)], "v": list(range(2_000_000))})
    print("ready", flush=True)
    while True:
        atomic_write_table(big, path)
    """
)


def test_a_process_killed_mid_write_leaves_the_previous_file_and_nothing_partial(tmp_path):
    from upath import UPath

    from sis_pipelines.core.storage import atomic_write_table

    path = tmp_path / "oneroster" / "users" / "2026-11-21" / "t.parquet"
    atomic_write_table(pa.table({"sourcedId": ["before"]}), UPath(path))
    for delay in (0.3, 0.9, 1.7):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        table = pq.read_table(path)  # always a whole file: the old one or a complete new one
        assert table.num_rows in (1, 2_000_000)
        visible = [p.name for p in path.parent.iterdir() if not p.name.startswith(".")]
        assert visible == ["t.parquet"]
    atomic_write_table(pa.table({"sourcedId": ["after"]}), UPath(path))
    assert [p.name for p in path.parent.iterdir()] == ["t.parquet"]  # leftovers cleared


PLANTED = {
    "client_secret": "PLANTED-client-secret-4f1c",
    "canvas_token": "PLANTED-canvas-token-9a2e",
    "salt": "PLANTED-hash-salt-77b1",
    "gradebook_vendor_secret": "PLANTED-vendor-secret-3d5a",
}


def test_planted_secrets_appear_nowhere(workspace, small_district, monkeypatch, capfd):
    instance, data, tenants = workspace
    monkeypatch.setenv("S_ID", "district")
    monkeypatch.setenv("S_SECRET", PLANTED["client_secret"])
    monkeypatch.setenv("S_CANVAS", PLANTED["canvas_token"])
    monkeypatch.setenv("S_SALT", PLANTED["salt"])
    monkeypatch.setenv("S_GB_KEY", "gb-key")
    monkeypatch.setenv("S_GB_SECRET", PLANTED["gradebook_vendor_secret"])
    gradebook = SisGradebook(
        "1.1", vendor_authorization=f"gb-key:{PLANTED['gradebook_vendor_secret']}"
    )
    with (
        SimulatorServer(
            "focus",
            district=small_district,
            night=NIGHT,
            client_id="district",
            client_secret=PLANTED["client_secret"],
            gradebook=gradebook,
        ) as sis,
        CanvasSimulator(token=PLANTED["canvas_token"]) as canvas,
    ):
        canvas.gradebook_share = 3
        tenants.write_text(
            f"""
tenants:
  secretive:
    vendor: focus
    oneroster:
      version: "1.1"
      source: rest
      base_url: {sis.base_url}
      auth: {{type: oauth2, token_url: "{sis.token_url}", client_id_env: S_ID, client_secret_env: S_SECRET}}
      step_retries: 0
    canvas: {{base_url: "{canvas.base_url}", token_env: S_CANVAS, max_removal_share: 1.0}}
    privacy: {{contact_fields: hash, hash_salt_env: S_SALT}}
    gpb: {{endpoints: standard, default_category: Homework, vendor_key_env: S_GB_KEY, vendor_secret_env: S_GB_SECRET}}
"""
        )
        sis.add_fault(
            path="/classes", status=401, body=b'{"error": "invalid_token"}', times=1
        )  # a 401 mid-run: refresh
        outcome = run_tenant_night(instance, "secretive", latest_complete_night())
        assert outcome.success, outcome.errors
        assert canvas.imports, "the night reached Canvas"
        assert gradebook.store["results"], "grades reached the SIS, with the vendor header"
        # And a failing run's messages too.
        monkeypatch.setenv("S_CANVAS", PLANTED["canvas_token"] + "-wrong")
        failed = run_tenant_night(
            instance,
            "secretive",
            latest_complete_night(),
            force_refetch=True,
            extra_tags={"sis_pipelines/force_upload": "true"},
        )
        assert not failed.success
    captured = capfd.readouterr()
    texts = [captured.out, captured.err, " ".join(outcome.errors), " ".join(failed.errors)]
    for run in instance.get_runs():
        texts += [str(entry) for entry in instance.all_logs(run.run_id)]
    files = [
        p for root in (data, Path(instance.root_directory)) for p in root.rglob("*") if p.is_file()
    ]
    for name, secret in PLANTED.items():
        assert not any(secret in t for t in texts), name
        for path in files:
            assert secret.encode() not in path.read_bytes(), (name, path)
    users = pq.read_table(
        data / "oneroster" / "users" / str(latest_complete_night()) / "secretive.parquet"
    ).to_pandas()
    assert users["email"].dropna().str.startswith("hmac-sha256:").all()


def test_the_deletion_guard_holds_when_the_sis_sends_an_empty_users_list(workspace):
    instance, data, tenants = workspace
    night2 = latest_complete_night()
    night1 = night2 - timedelta(days=1)
    base = """
tenants:
  guarded:
    vendor: genesis
    oneroster: {{version: "1.1", source: simulator, students: 150, seed: 2{faults}}}
    canvas: {{source: simulator}}
"""
    tenants.write_text(base.format(faults=""))
    assert run_tenant_night(instance, "guarded", night1).success
    ledger = data / "canvas_applied" / "guarded.json"
    applied = json.loads(ledger.read_text())
    state_before = (data / "simulator" / "canvas" / "guarded.json").read_bytes()
    tenants.write_text(
        base.format(
            faults=", simulator_faults: [{path: /users, status: 200, body: '{\"users\": []}', times: 1000}]"
        )
    )
    outcome = run_tenant_night(instance, "guarded", night2)
    assert not outcome.success
    assert json.loads(ledger.read_text()) == applied
    assert (data / "simulator" / "canvas" / "guarded.json").read_bytes() == state_before
    assert not (data / "canvas" / "sis_import" / str(night2) / "guarded.zip").exists()


def corpus_cases():
    for path in sorted(CORPUS.glob("*.json")):
        spec = json.loads(path.read_text())
        yield pytest.param(spec, id=path.stem)


@pytest.mark.parametrize("spec", corpus_cases())
def test_the_bad_input_corpus_ends_in_quarantine_or_repair_with_reasons(spec):
    collection = COLLECTIONS[spec["collection"]]
    records = []
    for case in spec["cases"]:
        record = case["record"]
        if isinstance(record, dict) and record.get("givenName") == "HUGE":
            record = {**record, "givenName": "x" * 70_000}
        records.append(record)
    table, rejects = normalise_page(collection, records)
    refs = {name: pa.array(ids) for name, ids in spec["references"].items()}
    result = validate(collection, table, refs, rejects)
    # A bad optional field is repaired (the record kept); anything else is quarantined.
    repaired = [c for c in spec["cases"] if c.get("outcome") == "repaired"]
    assert sorted(result.frame["sourcedId"]) == sorted(c["record"]["sourcedId"] for c in repaired)
    assert len(result.quarantine) == len(spec["cases"]) - len(repaired)
    reasons = list(result.quarantine["reason"])
    repairs = list(result.repairs["reason"])
    for case in spec["cases"]:
        found = repairs if case.get("outcome") == "repaired" else reasons
        assert any(case["reason"] in r for r in found), case["reason"]
    for raw in result.quarantine["record"]:
        json.loads(raw)  # every rejected record is kept, as JSON text


def test_bad_files_fail_cleanly(tmp_path):
    (tmp_path / "cut.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(BundleError, match="not a zip file"):
        load_bundle(tmp_path / "cut.zip")
    # A CSV in Windows-1252, as old exports are: read, not refused.
    bundle = tmp_path / "latin.zip"
    with zipfile.ZipFile(bundle, "w") as z:
        z.writestr("manifest.csv", "propertyName,value\noneroster.version,1.1\n")
        z.writestr(
            "orgs.csv",
            "sourcedId,status,dateLastModified,name,type\no1,active,,Escuela Bolívar,school\n".encode(
                "cp1252"
            ),
        )
    from sis_pipelines.oneroster.csv_bundle import read_collection

    read = read_collection(load_bundle(bundle), COLLECTIONS["orgs"], None)
    assert read.table["name"].to_pylist() == ["Escuela Bolívar"]


def test_data_minimisation_before_anything_is_written(workspace):
    instance, data, tenants = workspace
    tenants.write_text(
        """
tenants:
  minimal:
    vendor: genesis
    oneroster: {version: "1.1", source: simulator, students: 150, seed: 3}
    privacy: {demographics: false, contact_fields: drop}
"""
    )
    night = latest_complete_night()
    assert run_tenant_night(instance, "minimal", night, select="group:oneroster").success
    users = pq.read_table(data / "oneroster" / "users" / str(night) / "minimal.parquet").to_pandas()
    assert len(users) > 0
    assert users[["email", "sms", "phone"]].isna().all().all()
    assert (
        pq.read_table(data / "oneroster" / "demographics" / str(night) / "minimal.parquet").num_rows
        == 0
    )
    for path in data.rglob("*.parquet"):
        assert b"@students.example.org" not in path.read_bytes(), path
