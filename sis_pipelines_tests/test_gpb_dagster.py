"""Grade passback through Dagster: two nights, the same night again, an older night, backfills
and --force-push."""

from __future__ import annotations

import json
from datetime import timedelta

import pyarrow.parquet as pq

from sis_pipelines.cli import main
from sis_pipelines.core.nights import latest_complete_night
from sis_pipelines.operate import run_tenant_night

from .support import latest_meta

TENANTS = """
tenants:
  gpb-a:
    vendor: focus
    oneroster: {version: "1.1", source: simulator, students: 200, seed: 4}
    canvas: {source: simulator, sis_id_prefix: "a-", gradebook_share: 4}
    gpb: {endpoints: standard, default_category: Homework}
  gpb-off:
    vendor: genesis
    oneroster: {version: "1.1", source: simulator, students: 120, seed: 5}
    canvas: {source: simulator, sis_id_prefix: "o-"}
"""


def outcomes(data, night) -> dict[str, int]:
    table = pq.read_table(data / "gpb" / "outcomes" / str(night) / "gpb-a.parquet").to_pandas()
    assert set(table.columns) >= {"path", "status", "http_status", "error"}
    return table["status"].value_counts().to_dict()


def test_two_nights_then_the_same_night_sends_nothing(workspace):
    instance, data, tenants = workspace
    tenants.write_text(TENANTS)
    night2 = latest_complete_night()
    night1 = night2 - timedelta(days=1)
    for night in (night1, night2):
        outcome = run_tenant_night(instance, "gpb-a", night)
        assert outcome.success, outcome.errors
    first = outcomes(data, night1)
    assert first.get("sent", 0) > 100 and "failed" not in first
    lines = (data / "gpb" / "requests" / str(night1) / "gpb-a.jsonl").read_text().splitlines()
    request = json.loads(lines[0])
    assert request["method"] == "PUT" and request["path"].startswith("/lineItems/")
    assert set(request["body"]) == {"lineItem"}
    second = outcomes(data, night2)
    assert second.get("sent", 0) > 0 and second.get("unchanged", 0) > 0
    assert second["sent"] < first["sent"]
    # The same night again: nothing new goes to the SIS.
    assert run_tenant_night(instance, "gpb-a", night2).success
    assert outcomes(data, night2).get("sent", 0) == 0
    meta = latest_meta(instance, "gpb/push")
    assert meta["sent"] == 0 and meta["failed"] == 0 and meta["unchanged"] > 0
    gradebook = latest_meta(instance, "gpb/canvas_gradebook")
    assert gradebook["read_as_at"].startswith(str(night2)) or gradebook["read_as_at"] > str(night2)
    assert gradebook["courses_read"] == gradebook["courses"] - gradebook["courses_not_in_canvas"]
    payloads = latest_meta(instance, "gpb/payloads")
    assert payloads["removal_guard"] == "passed" and payloads["lineItem_removals"] == 0
    # An older night, once a newer one went, is computed but not pushed.
    before = (data / "gpb" / "outcomes" / str(night1) / "gpb-a.parquet").stat().st_mtime_ns
    assert run_tenant_night(instance, "gpb-a", night1).success
    assert latest_meta(instance, "gpb/push")["outcome"].startswith("not pushed: a later night")
    assert (data / "gpb" / "outcomes" / str(night1) / "gpb-a.parquet").stat().st_mtime_ns == before
    # A tenant with grade passback off gets no gpb outputs at all.
    off = run_tenant_night(instance, "gpb-off", night2)
    assert off.success
    assert not (data / "gpb" / "requests" / str(night2) / "gpb-off.jsonl").exists()
    # Its run has no gpb steps, and no blocking check left without a result to warn of.
    logs = instance.all_logs(off.run_id)
    assert not [e for e in logs if e.step_key and e.step_key.startswith("gpb")]
    assert not [e for e in logs if "emitted no result" in (e.user_message or "")]


def test_a_backfill_computes_payloads_and_pushes_only_when_forced(workspace, monkeypatch):
    instance, data, tenants = workspace
    tenants.write_text(TENANTS)
    night = latest_complete_night()
    assert run_tenant_night(instance, "gpb-a", night).success
    pushed = (data / "gpb" / "outcomes" / str(night) / "gpb-a.parquet").stat().st_mtime_ns
    monkeypatch.setenv("DAGSTER_HOME", str(instance.root_directory))
    assert main(["backfill", "--tenant", "gpb-a", "--from", str(night), "--to", str(night)]) == 0
    meta = latest_meta(instance, "gpb/push")
    assert meta["outcome"].startswith("not pushed: a backfill run")
    assert (data / "gpb" / "outcomes" / str(night) / "gpb-a.parquet").stat().st_mtime_ns == pushed
    # Forced: it goes, and everything is already in the SIS.
    forced = run_tenant_night(
        instance,
        "gpb-a",
        night,
        extra_tags={"sis_pipelines/backfill": "x", "sis_pipelines/force_push": "true"},
    )
    assert forced.success, forced.errors
    meta = latest_meta(instance, "gpb/push")
    assert meta["forced"] is True and meta["failed"] == 0 and meta["sent"] > 0


def test_gradebook_faults_transient_pass_persistent_fail_and_rerun_sends_only_those(workspace):
    instance, data, tenants = workspace
    night = latest_complete_night()
    transient = "[{path: /results/, status: 503, times: 3, skip: 5}, {path: /lineItems/, kind: drop, times: 1}]"
    persistent = "[{path: /results/, status: 500, times: 100000, skip: 40}]"
    with_faults = TENANTS.replace(
        "seed: 4}", "seed: 4, retry_attempts: 4, retry_backoff_s: 0.01, simulator_faults: {faults}}"
    )
    tenants.write_text(with_faults.replace("{faults}", persistent))
    failed = run_tenant_night(instance, "gpb-a", night)
    assert not failed.success
    message = " ".join(failed.errors)
    assert "gpb__push" in message and "'gpb-a'" in message and "/results/" in message
    table = pq.read_table(data / "gpb" / "outcomes" / str(night) / "gpb-a.parquet").to_pandas()
    n_failed = int((table["status"] == "failed").sum())
    n_waiting = int((table["status"] == "skipped").sum())
    assert 10 <= n_failed < 12  # then the push stops asking a SIS that keeps failing
    assert n_waiting > 0 and int((table["status"] == "sent").sum()) > 40
    passes = data / "gpb" / "passes" / "gpb-a.json"
    assert not passes.exists() or str(night) not in json.loads(passes.read_text())
    # Transient faults only: the re-run sends exactly what failed, and completes the pass.
    tenants.write_text(with_faults.replace("{faults}", transient))
    rerun = run_tenant_night(instance, "gpb-a", night)
    assert rerun.success, rerun.errors
    assert outcomes(data, night).get("sent", 0) == n_failed + n_waiting
    assert str(night) in json.loads(passes.read_text())
