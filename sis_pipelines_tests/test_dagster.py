"""Dagster-level: a tenant-night end to end, immutability of nights, checks, CLI, schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sis_pipelines.cli import main
from sis_pipelines.core.errors import MissingSecretError, StoredStateError
from sis_pipelines.core.nights import latest_complete_night
from sis_pipelines.definitions import defs
from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.operate import run_tenant_night
from sis_pipelines.simulator.server import SimulatorServer

from .support import SECRET


def write_tenants(
    path: Path, sis: SimulatorServer | None = None, threshold: float = 0.05, extra: str = ""
) -> None:
    text = """
tenants:
  sim-a:
    vendor: genesis
    oneroster: {version: "1.1", source: simulator, students: 250, seed: 3}
    privacy: {demographics: true}
  sim-b:
    vendor: infinite_campus
    enabled: false
    oneroster: {version: "1.2", source: simulator, students: 250, seed: 4}
"""
    if sis is not None:
        text += f"""
  rest-a:
    vendor: focus
    oneroster:
      version: "1.1"
      source: rest
      base_url: {sis.base_url}
      auth: {{type: oauth2, token_url: "{sis.token_url}", client_id_env: REST_A_ID, client_secret_env: REST_A_SECRET}}
      step_retries: 0
    validation: {{max_quarantined_share: {threshold}}}
"""
    path.write_text(text + extra)


def materializations(instance, name: str, tenant: str) -> list[dg.AssetMaterialization]:
    records = instance.fetch_materializations(dg.AssetKey(["oneroster", name]), limit=100).records
    return [r.asset_materialization for r in records if tenant in (r.partition_key or "")]


def fetched_run(instance, name: str, tenant: str) -> str:
    """The run of the oldest materialization of the collection for the tenant."""
    records = instance.fetch_materializations(dg.AssetKey(["oneroster", name]), limit=100).records
    return [r.run_id for r in records if tenant in (r.partition_key or "")][-1]


def check_results(instance, name: str) -> list:
    key = dg.AssetCheckKey(dg.AssetKey(["oneroster", name]), "quarantine")
    return instance.event_log_storage.get_asset_check_execution_history(key, limit=10)


def test_a_tenant_night_end_to_end(workspace):
    instance, data, tenants = workspace
    write_tenants(tenants)
    night = latest_complete_night()
    outcome = run_tenant_night(instance, "sim-a", night)
    assert outcome.success, outcome.errors
    for name in COLLECTIONS:
        path = data / "oneroster" / name / str(night) / "sim-a.parquet"
        table = pq.read_table(path)
        assert table.num_rows > 0, name
        ids = table["sourcedId"].to_pylist()
        assert len(ids) == len(set(ids)), name
        assert (
            pq.read_table(data / "quarantine" / name / str(night) / "sim-a.parquet").num_rows == 0
        )
    enrollments = pq.read_schema(data / "oneroster" / "enrollments" / str(night) / "sim-a.parquet")
    assert enrollments.field("beginDate").type == pa.date32()
    assert enrollments.field("primary").type == pa.bool_()
    meta = materializations(instance, "users", "sim-a")[0].metadata
    assert meta["dagster/row_count"].value > 0
    assert meta["requests"].value >= 1
    assert meta["oneroster_version"].value == "1.1"
    assert meta["origin"].value == "simulator"
    assert all(r.status.value == "SUCCEEDED" for r in check_results(instance, "users"))


def test_a_stored_night_is_reused_and_a_forced_refetch_is_recorded(workspace):
    instance, data, tenants = workspace
    write_tenants(tenants)
    night = latest_complete_night() - timedelta(days=3)
    assert run_tenant_night(instance, "sim-a", night).success
    path = data / "oneroster" / "users" / str(night) / "sim-a.parquet"
    first = pq.read_table(path)
    assert run_tenant_night(
        instance, "sim-a", night, select="key:oneroster/users+ or key:oneroster/orgs"
    ).success
    assert pq.read_table(path).equals(first)
    fetched, latest = (m.metadata for m in materializations(instance, "users", "sim-a")[1::-1])
    assert latest["origin"].value == "stored snapshot"
    # The re-run keeps the night's fetch figures on view, with the run that fetched them.
    for figure in ("pages", "requests", "retries", "fetch_seconds", "page_size_served"):
        assert latest[figure] == fetched[figure], figure
    assert latest["fetched_in_run"].value == fetched_run(instance, "users", "sim-a")
    assert run_tenant_night(
        instance,
        "sim-a",
        night,
        select="key:oneroster/users or key:oneroster/orgs",
        force_refetch=True,
    ).success
    forced = materializations(instance, "users", "sim-a")[0].metadata
    assert forced["refetch_forced"].value is True
    assert forced["origin"].value == "simulator"


def test_a_past_night_of_a_real_sis_is_never_overwritten_with_todays_data(
    workspace, sis, monkeypatch
):
    instance, data, tenants = workspace
    monkeypatch.setenv("REST_A_ID", "district-id")
    monkeypatch.setenv("REST_A_SECRET", SECRET)
    write_tenants(tenants, sis)
    night = latest_complete_night() - timedelta(days=30)
    # Refused before a run is made (a run the UI makes fails in its step, the same line).
    with pytest.raises(StoredStateError, match="serves only its present state"):
        run_tenant_night(instance, "rest-a", night, select="key:oneroster/orgs")
    assert not instance.get_run_records()
    assert not (data / "oneroster" / "orgs" / str(night)).exists()
    forced = run_tenant_night(
        instance, "rest-a", night, select="key:oneroster/orgs", force_refetch=True
    )
    assert forced.success
    assert materializations(instance, "orgs", "rest-a")[0].metadata["refetch_forced"].value is True


def _spoil_users(sis: SimulatorServer, count: int) -> set[str]:
    users = sis.frames["users"].copy()
    spoiled = users[users["role"] == "guardian"].index[:count]
    users.loc[spoiled, "role"] = "wizard"
    sis.mutate("users", users)
    return set(users.loc[spoiled, "sourcedId"])


def test_quarantine_above_the_threshold_blocks_downstream(workspace, sis, monkeypatch):
    instance, data, tenants = workspace
    monkeypatch.setenv("REST_A_ID", "district-id")
    monkeypatch.setenv("REST_A_SECRET", SECRET)
    write_tenants(tenants, sis, threshold=0.001)
    spoiled = _spoil_users(sis, 5)
    night = latest_complete_night()
    outcome = run_tenant_night(instance, "rest-a", night)
    assert not outcome.success
    quarantine = pq.read_table(
        data / "quarantine" / "users" / str(night) / "rest-a.parquet"
    ).to_pandas()
    assert set(quarantine["sourcedId"]) == spoiled
    assert all("role 'wizard'" in reason for reason in quarantine["reason"])
    assert not (data / "oneroster" / "enrollments" / str(night) / "rest-a.parquet").exists()
    [result] = check_results(instance, "users")
    assert result.status.value == "FAILED"


def test_quarantine_below_the_threshold_warns_and_flows_on(workspace, sis, monkeypatch):
    instance, data, tenants = workspace
    monkeypatch.setenv("REST_A_ID", "district-id")
    monkeypatch.setenv("REST_A_SECRET", SECRET)
    write_tenants(tenants, sis, threshold=0.05)
    spoiled = _spoil_users(sis, 2)
    night = latest_complete_night()
    outcome = run_tenant_night(instance, "rest-a", night)
    assert outcome.success, outcome.errors
    users = pq.read_table(data / "oneroster" / "users" / str(night) / "rest-a.parquet")
    assert not spoiled & set(users["sourcedId"].to_pylist())
    # Guardians quarantined: nothing else refers to them, so nothing else is lost.
    assert (
        pq.read_table(data / "quarantine" / "enrollments" / str(night) / "rest-a.parquet").num_rows
        == 0
    )
    [result] = check_results(instance, "users")
    evaluation = result.event.dagster_event.event_specific_data
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    # The client secret appears in no output file and in no Dagster event.
    for path in data.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id):
            assert SECRET not in str(entry)
    for path in Path(instance.root_directory).rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_missing_secret_fails_with_the_variable_name_only(workspace, sis, monkeypatch):
    instance, _, tenants = workspace
    monkeypatch.delenv("REST_A_SECRET", raising=False)
    monkeypatch.setenv("REST_A_ID", "district-id")
    write_tenants(tenants, sis)
    # Refused before a run is made (a run the schedule makes fails in the step, as
    # test_connect's services do, with the same line).
    with pytest.raises(MissingSecretError, match=r"REST_A_SECRET \(auth.client_secret_env\)"):
        run_tenant_night(instance, "rest-a", latest_complete_night(), select="key:oneroster/orgs")
    assert not instance.get_run_records()


def test_cli_syncs_tenants_and_runs_a_night(workspace, monkeypatch, capsys):
    instance, data, tenants = workspace
    write_tenants(tenants)
    monkeypatch.setattr("sis_pipelines.operate.dagster_instance", lambda: instance)
    assert main(["tenants", "sync"]) == 0
    out = capsys.readouterr().out
    assert "sim-a" in out and "disabled" in out
    assert instance.get_dynamic_partitions("tenant") == ["sim-a"]
    night = latest_complete_night()
    assert (
        main(["run", "--tenant", "sim-a", "--night", "latest", "--select", "group:oneroster"]) == 0
    )
    assert (data / "oneroster" / "enrollments" / str(night) / "sim-a.parquet").exists()
    capsys.readouterr()
    assert main(["run", "--tenant", "nobody", "--night", "latest"]) == 2
    assert "not in the tenants file" in capsys.readouterr().err
    assert main(["run", "--tenant", "sim-a", "--night", "yesterday"]) == 2


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_operator_mistakes_are_one_line_and_a_non_zero_exit(workspace, sis, monkeypatch, capsys):
    instance, _data, tenants = workspace
    write_tenants(tenants, sis)
    monkeypatch.setattr("sis_pipelines.operate.dagster_instance", lambda: instance)
    night = str(latest_complete_night())
    run = ["run", "--tenant", "sim-a", "--night"]
    assert main([*run, "2020-01-01"]) == 2
    assert "2020-01-01 is not one of the nights" in _one_line(capsys)
    assert main([*run, night, "--select", "grop:oneroster"]) == 2
    assert "--select 'grop:oneroster'" in _one_line(capsys)
    assert main([*run, night, "--select", "key:oneroster/nothing"]) == 2
    assert "matches no asset" in _one_line(capsys)
    # A backfill of nights whose snapshots were never stored: which night, and what to run.
    old = str(latest_complete_night() - timedelta(days=5))
    backfill = ["backfill", "--tenant", "sim-a", "--from", old, "--to", old]
    assert main([*backfill, "--select", "key:oneroster/enrollments"]) == 2
    out = capsys.readouterr()
    assert "Traceback" not in out.err and len(out.err.strip().splitlines()) == 1, out.err
    assert f"night {old}: no oneroster/" in out.err
    assert f"sis-pipelines run --tenant sim-a --night {old} --select group:oneroster" in out.err
    assert not instance.get_backfills()  # refused before the backfill was recorded
    # A past night of a real SIS, never stored: the SIS serves only today.
    monkeypatch.setenv("REST_A_ID", "district-id")
    monkeypatch.setenv("REST_A_SECRET", SECRET)
    assert main(["run", "--tenant", "rest-a", "--night", old, "--select", "group:oneroster"]) == 2
    assert "--force-refetch" in _one_line(capsys)
    # A missing secret: one line naming the variable, however many steps it stopped.
    monkeypatch.delenv("REST_A_SECRET", raising=False)
    monkeypatch.setenv("REST_A_ID", "district-id")
    runs = len(instance.get_run_records())
    assert main(["run", "--tenant", "rest-a", "--night", night, "--select", "group:oneroster"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "REST_A_SECRET (auth.client_secret_env) is not set" in err
    assert "nothing was run" in err
    assert len(instance.get_run_records()) == runs  # refused before a run was made
    # No Dagster instance at all.
    monkeypatch.undo()
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["tenants", "list"]) == 2
    assert "DAGSTER_HOME is not set" in _one_line(capsys)


def test_the_schedule_launches_one_run_per_enabled_tenant(workspace):
    instance, _, tenants = workspace
    write_tenants(tenants)
    instance.add_dynamic_partitions("tenant", ["sim-a", "sim-b"])
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime(2026, 11, 23, 2, 30, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    requests = defs.resolve_schedule_def("nightly_schedule").evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2026-11-22|sim-a"]
    assert requests[0].tags["sis_vendor"] == "genesis"


def test_lineage_of_the_assets():
    graph = defs.resolve_asset_graph()
    parents = {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert parents["oneroster/enrollments"] == {
        "oneroster/users",
        "oneroster/classes",
        "oneroster/orgs",
    }
    assert parents["oneroster/classes"] == {
        "oneroster/courses",
        "oneroster/orgs",
        "oneroster/academic_sessions",
    }
    assert parents["oneroster/demographics"] == {"oneroster/users"}
    assert parents["oneroster/orgs"] == set()
    # The OneRoster snapshot, or a CSV Gateway tenant's drop.
    assert parents["canvas/mapping"] == {
        f"oneroster/{n}" for n in COLLECTIONS if n != "demographics"
    } | {"canvas_csv/drop"}
    assert parents["canvas/delta"] == {"canvas/mapping"}
    assert parents["canvas/sis_import"] == {"canvas/delta"}
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert all(group == key.split("/")[0] for key, group in groups.items())
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners and node.kinds and node.description, key
        # Freshness is each tenant's own check (tenants/<tenant>: night_arrived): a policy on
        # a tenant x night asset would be met by any tenant's night.
        assert node.freshness_policy is None, key
