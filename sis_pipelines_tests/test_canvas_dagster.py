"""Canvas provisioning through Dagster: two nights, idempotent upload, guard and its override."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
import pyarrow.parquet as pq

from sis_pipelines.core.nights import latest_complete_night
from sis_pipelines.operate import run_tenant_night

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
    assert "Counted by the guard, grouped" in evaluation.metadata["what_would_be_removed"].value
    assert "over the limit (" in evaluation.description
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


def test_evaluate_shows_what_a_night_would_change_in_canvas_as_it_stands(
    workspace, monkeypatch, capsys
):
    """Canvas holds an earlier night; the evaluation of a later one, read from Canvas's own SIS
    export, counts exactly what an import would create and remove (counted here by hand from
    the two nights' Canvas files), and uploads nothing."""
    from sis_pipelines.cli import main

    instance, data, tenants = workspace
    monkeypatch.setattr("sis_pipelines.operate.dagster_instance", lambda: instance)
    tenants.write_text(TENANTS.format(share=1.0, dry="false"))
    night2 = latest_complete_night()
    night1 = night2 - timedelta(days=20)
    assert run_tenant_night(instance, "canvas-a", night1).success  # Canvas now holds night1
    select = "group:oneroster or key:canvas/mapping"
    assert run_tenant_night(instance, "canvas-a", night2, select=select).success
    before = ledger(data)
    assert main(["evaluate", "--tenant", "canvas-a", "--night", str(night2)]) == 0
    out = capsys.readouterr().out
    assert ledger(data) == before  # nothing uploaded
    changes = pq.read_table(data / "evaluate" / "changes" / str(night2) / "canvas-a.parquet")
    changes = changes.to_pandas()

    def ids(night, name, key):
        frame = pq.read_table(data / "canvas_mapping" / name / str(night) / "canvas-a.parquet")
        frame = frame.to_pandas()
        return set(frame.loc[frame["status"] == "active", key])

    differ = False
    for name, key in (("users", "user_id"), ("courses", "course_id"), ("sections", "section_id")):
        old, new = ids(night1, name, key), ids(night2, name, key)
        differ |= old != new
        mine = changes[changes["file"] == name]
        assert set(mine.loc[mine["action"] == "add", "sis_id"]) == new - old, name
        removed = mine.loc[~mine["action"].isin(["add", "update"]), "sis_id"]
        assert set(removed) == old - new, name
        assert f"| {name} | {len(new)} |" in out
    assert differ  # the nights differ: the comparison is not vacuous
    assert f"changes: {data}/evaluate/changes/{night2}/canvas-a.parquet" in out
    # Then the night's own run links the evaluation from its deletion guard.
    assert run_tenant_night(instance, "canvas-a", night2).success
    key = dg.AssetCheckKey(dg.AssetKey(["canvas", "delta"]), "deletion_guard")
    latest = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)[0]
    metadata = latest.event.dagster_event.event_specific_data.metadata
    assert metadata["evaluation"].value.endswith(f"evaluate/report/{night2}/canvas-a.md")
    # Canvas now holds night2: evaluated again, nothing is left to create, change or delete
    # (what the night deleted is not in Canvas's SIS export, which leaves deleted objects
    # out); the users it suspended are still in Canvas and absent from the SIS.
    assert main(["evaluate", "--tenant", "canvas-a", "--night", str(night2)]) == 0
    again = pq.read_table(data / "evaluate" / "changes" / str(night2) / "canvas-a.parquet")
    assert set(again["action"].to_pylist()) <= {"suspend"}, again.to_pandas()


def test_evaluate_reads_only_the_tenants_rows_of_a_shared_canvas():
    import pandas as pd

    from sis_pipelines.canvas.evaluate import tenants_rows

    users = pd.DataFrame({"user_id": ["a-1", "b-1", "a-2", None], "status": ["active"] * 4})
    assert list(tenants_rows(users, "users", "a-")["user_id"]) == ["a-1", "a-2"]
    assert len(tenants_rows(users, "users", "")) == 4
