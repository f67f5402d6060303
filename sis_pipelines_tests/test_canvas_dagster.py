"""Canvas provisioning through Dagster: two nights, idempotent upload, guard and its override."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
import pyarrow.parquet as pq

from sis_pipelines.cli import run_tenant_night
from sis_pipelines.nights import latest_complete_night

TENANTS = """
tenants:
  canvas-a:
    vendor: genesis
    oneroster: {{version: "1.1", source: simulator, students: 250, seed: 3}}
    canvas: {{source: simulator, sis_id_prefix: "a-", max_removal_share: {share}, dry_run: {dry}}}
"""


def ledger(data) -> dict:
    path = data / "canvas_applied" / "canvas-a.json"
    return json.loads(path.read_text()) if path.exists() else {}


def latest_meta(instance, key: str) -> dict:
    record = instance.fetch_materializations(dg.AssetKey(key.split("/")), limit=1).records[0]
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def test_two_nights_upload_once_each(workspace):
    instance, data, tenants = workspace
    tenants.write_text(TENANTS.format(share=1.0, dry="false"))
    night2 = latest_complete_night()
    night1 = night2 - timedelta(days=20)
    assert run_tenant_night(instance, "canvas-a", night1).success
    assert run_tenant_night(instance, "canvas-a", night2).success
    applied = ledger(data)
    assert [applied[str(n)]["workflow_state"] for n in (night1, night2)] == ["imported", "imported"]
    changes = pq.read_table(
        data / "canvas" / "changes" / str(night2) / "canvas-a.parquet"
    ).to_pandas()
    assert set(changes.columns) == {"file", "sis_id", "action", "reason"}
    assert changes["sis_id"].str.startswith("a-").all()
    assert {"add", "delete"} <= set(changes["action"])
    assert latest_meta(instance, "canvas/delta")["applied_base_night"] == str(night1)
    # The same night again uploads nothing.
    assert run_tenant_night(instance, "canvas-a", night2).success
    assert latest_meta(instance, "canvas/sis_import")["outcome"] == "already imported"
    assert ledger(data) == applied


def test_the_guard_blocks_and_an_operator_can_let_one_run_through(workspace):
    instance, data, tenants = workspace
    tenants.write_text(TENANTS.format(share=0.0, dry="false"))
    night2 = latest_complete_night()
    night1 = night2 - timedelta(days=20)
    assert run_tenant_night(
        instance, "canvas-a", night1
    ).success  # the first import removes nothing
    blocked = run_tenant_night(instance, "canvas-a", night2)
    assert not blocked.success
    assert str(night2) not in ledger(data)
    assert not (data / "canvas" / "sis_import" / str(night2) / "canvas-a.zip").exists()
    key = dg.AssetCheckKey(dg.AssetKey(["canvas", "delta"]), "deletion_guard")
    latest = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)[0]
    evaluation = latest.event.dagster_event.event_specific_data
    assert not evaluation.passed
    # Each tenant-night has its own status: another tenant's success cannot hide this one.
    assert latest.partition == evaluation.partition == f"{night2}|canvas-a"
    assert "Removals" in evaluation.metadata["what_would_be_removed"].value
    allowed = run_tenant_night(
        instance, "canvas-a", night2, extra_tags={"sis_pipelines/allow_mass_removal": "true"}
    )
    assert allowed.success, allowed.errors
    assert ledger(data)[str(night2)]["workflow_state"] == "imported"
    latest = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)[0]
    evaluation = latest.event.dagster_event.event_specific_data
    assert evaluation.passed and evaluation.metadata["overridden"].value is True


def test_dry_run_builds_the_zip_and_uploads_nothing(workspace):
    instance, data, tenants = workspace
    tenants.write_text(TENANTS.format(share=0.05, dry="true"))
    night = latest_complete_night()
    assert run_tenant_night(instance, "canvas-a", night).success
    assert (data / "canvas" / "sis_import" / str(night) / "canvas-a.zip").exists()
    assert ledger(data) == {}
    assert latest_meta(instance, "canvas/sis_import")["outcome"].startswith("dry run")


def test_a_failed_canvas_import_fails_the_asset_with_canvas_messages(workspace):
    from sis_pipelines.simulator.plugin import canvas_simulator as simulator_for

    instance, data, tenants = workspace
    tenants.write_text(TENANTS.format(share=0.05, dry="false"))
    simulator_for("canvas-a", data / "simulator" / "canvas").fail_next = 1
    night = latest_complete_night()
    outcome = run_tenant_night(instance, "canvas-a", night)
    assert not outcome.success
    assert "failed_with_messages" in " ".join(outcome.errors)
    assert "simulated failure" in " ".join(outcome.errors)
    assert ledger(data) == {}
    # Once Canvas is healthy again, the same night goes through.
    assert run_tenant_night(instance, "canvas-a", night).success
    assert ledger(data)[str(night)]["workflow_state"] == "imported"
