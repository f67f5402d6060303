"""Operations: tenant onboarding, term-change backfills, the backfill command, the Postgres instance."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import psycopg2
import pytest

from sis_pipelines.cli import main
from sis_pipelines.core.nights import latest_complete_night
from sis_pipelines.definitions import defs
from sis_pipelines.defs.automation.jobs import term_change_job
from sis_pipelines.operate import run_tenant_night

from .support import SECRET

ROOT = Path(__file__).parents[1]


def test_onboarding_registers_new_tenants_and_keeps_disabled_ones(workspace):
    instance, _, tenants = workspace
    tenants.write_text(
        """
tenants:
  alpha: {vendor: genesis, oneroster: {version: "1.1", source: simulator}}
  beta: {vendor: focus, enabled: false, oneroster: {version: "1.1", source: simulator}}
"""
    )
    instance.add_dynamic_partitions("tenant", ["beta"])
    sensor = defs.resolve_sensor_def("tenant_onboarding_sensor")
    result = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
    )
    [request] = result.dynamic_partitions_requests
    assert list(request.partition_keys) == ["alpha"]
    # The new tenant's connections are checked at once, in a run of connection_check.
    [check] = result.run_requests
    assert check.job_name == "connection_check" and check.tags["tenant"] == "alpha"
    ran = defs.resolve_job_def("connection_check").execute_in_process(
        run_config=check.run_config, instance=instance
    )
    assert ran.success
    table = ran.output_for_node("check_connections") is None and next(
        e.event_specific_data.metadata["checks"].value
        for e in ran.all_events
        if e.event_type_value == "STEP_OUTPUT"
    )
    assert "| alpha | oneroster users | OK |" in table and "beta" not in table
    instance.add_dynamic_partitions("tenant", ["alpha"])
    again = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
    )
    assert not again.dynamic_partitions_requests
    assert set(instance.get_dynamic_partitions("tenant")) == {
        "alpha",
        "beta",
    }  # beta keeps its partition


def test_a_term_change_backfills_derived_assets_from_stored_nights(workspace, sis, monkeypatch):
    instance, _data, tenants = workspace
    monkeypatch.setenv("T_ID", "district-id")
    monkeypatch.setenv("T_SECRET", SECRET)
    tenants.write_text(
        f"""
tenants:
  district-t:
    vendor: focus
    oneroster:
      version: "1.1"
      source: rest
      base_url: {sis.base_url}
      auth: {{type: oauth2, token_url: "{sis.token_url}", client_id_env: T_ID, client_secret_env: T_SECRET}}
      step_retries: 0
    canvas: {{source: simulator, max_removal_share: 1.0}}
"""
    )
    latest = latest_complete_night()
    n1, n2, n3 = latest - timedelta(days=2), latest - timedelta(days=1), latest
    assert run_tenant_night(instance, "district-t", n1, force_refetch=True).success
    sessions = sis.frames["academic_sessions"].copy()
    spring = sessions["type"] == "semester"
    sessions.loc[spring, "endDate"] = sessions.loc[spring, "endDate"].map(
        lambda d: d - timedelta(days=3)
    )
    sis.mutate("academic_sessions", sessions)  # the district moved its semester ends
    assert run_tenant_night(instance, "district-t", n2, force_refetch=True).success
    assert run_tenant_night(instance, "district-t", n3).success
    sensor = defs.resolve_sensor_def("term_change_sensor")
    # The daemon evaluates sensors with the instance as the store of dynamic partitions.
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        result = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
        )
    assert [r.partition_key for r in result.run_requests] == [
        f"{n2}|district-t",
        f"{n3}|district-t",
    ]
    assert all(r.tags["sis_pipelines/backfill"] == f"term-change {n2}" for r in result.run_requests)
    assert term_change_job.selection.resolve(defs.resolve_asset_graph()) == {
        dg.AssetKey(["canvas", "mapping"]),
        dg.AssetKey(["canvas", "delta"]),
    }
    # The backfill runs from stored snapshots: the SIS sees no request.
    requests_before = len(sis.requests)
    for request in result.run_requests:
        night = datetime.strptime(request.partition_key.split("|")[0], "%Y-%m-%d").date()
        outcome = run_tenant_night(
            instance,
            "district-t",
            night,
            select="key:canvas/mapping or key:canvas/delta",
            extra_tags=dict(request.tags),
        )
        assert outcome.success, outcome.errors
    assert len(sis.requests) == requests_before
    # Nothing new: the cursor moved past what was seen.
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        later = sensor.evaluate_tick(
            dg.build_sensor_context(
                instance=instance, cursor=result.cursor, repository_def=defs.get_repository_def()
            )
        )
    assert not later.run_requests


def test_the_backfill_command_rederives_a_range_of_nights(workspace, monkeypatch, capsys):
    instance, data, tenants = workspace
    tenants.write_text(
        """
tenants:
  sim-a:
    vendor: genesis
    oneroster: {version: "1.1", source: simulator, students: 200, seed: 3}
    canvas: {source: simulator, max_removal_share: 1.0}
"""
    )
    monkeypatch.setattr("sis_pipelines.operate.dagster_instance", lambda: instance)
    latest = latest_complete_night()
    first = latest - timedelta(days=1)
    for night in (first, latest):
        assert run_tenant_night(instance, "sim-a", night, select="group:oneroster").success
    code = main(
        [
            "backfill",
            "--tenant",
            "sim-a",
            "--from",
            str(first),
            "--to",
            str(latest),
            "--select",
            "key:canvas/mapping or key:canvas/delta",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert f"sim-a {first}: ok" in out and f"sim-a {latest}: ok" in out
    for night in (first, latest):
        assert (data / "canvas" / "changes" / str(night) / "sim-a.parquet").exists()
    runs = instance.get_runs(
        filters=dg.RunsFilter(tags={"sis_pipelines/backfill": f"{first}..{latest}"})
    )
    assert len(runs) == 2
    # The Backfills page shows which district and nights: its title, description and tags.
    [record] = instance.get_backfills()
    assert record.title == f"sim-a {first}..{latest}"
    assert record.description == f"tenant sim-a, nights {first} to {latest} (2)"
    assert record.tags["tenant"] == "sim-a" and record.tags["sis_vendor"] == "genesis"


@pytest.fixture
def postgres_home(tmp_path, monkeypatch):
    """A Dagster home with the production dagster.yaml on a fresh database of the local PostgreSQL."""
    name = f"sis_pipelines_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    for key, value in {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_USER": "postgres",
        "DAGSTER_PG_PASSWORD": "trust-auth",
        "DAGSTER_PG_DB": name,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SIS_PIPELINES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SIS_PIPELINES_TENANTS", str(tmp_path / "tenants.yaml"))
    (tmp_path / "tenants.yaml").write_text(
        """
tenants:
  pg-tenant: {vendor: infinite_campus, oneroster: {version: "1.2", source: simulator, students: 150, seed: 8}}
"""
    )
    yield home, name
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_a_tenant_night_and_a_schedule_tick_on_the_postgres_instance(postgres_home):
    _home, database = postgres_home
    instance = dg.DagsterInstance.get()
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
    night = latest_complete_night()
    outcome = run_tenant_night(instance, "pg-tenant", night, select="group:oneroster")
    assert outcome.success, outcome.errors
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime.combine(
            night + timedelta(days=1), datetime.min.time(), UTC
        ),
        repository_def=defs.get_repository_def(),
    )
    tick = defs.resolve_schedule_def("nightly_schedule").evaluate_tick(context)
    assert [r.partition_key for r in tick.run_requests] == [f"{night}|pg-tenant"]
    instance.dispose()
    # Read everything back through a new instance, straight from PostgreSQL.
    again = dg.DagsterInstance.get()
    run = again.get_run_by_id(outcome.run_id)
    assert run is not None and run.is_success
    assert run.tags["sis_vendor"] == "infinite_campus"
    records = again.fetch_materializations(dg.AssetKey(["oneroster", "users"]), limit=5).records
    assert records and records[0].partition_key == f"{night}|pg-tenant"
    assert records[0].asset_materialization.metadata["dagster/row_count"].value > 0
    with (
        psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=database) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT count(*) FROM runs WHERE run_id = %s", (outcome.run_id,))
        assert cur.fetchone()[0] == 1
    again.dispose()


def test_a_tenant_whose_sis_is_down_fails_alone(workspace, monkeypatch):
    instance, _data, tenants = workspace
    monkeypatch.setenv("DOWN_TOKEN", "t")
    tenants.write_text(
        """
tenants:
  up: {vendor: genesis, oneroster: {version: "1.1", source: simulator, students: 150}}
  down:
    vendor: focus
    oneroster:
      version: "1.1"
      source: rest
      base_url: http://127.0.0.1:9/ims/oneroster/v1p1
      auth: {type: bearer, token_env: DOWN_TOKEN}
      step_retries: 0
      timeout_s: 2
"""
    )
    monkeypatch.setattr("sis_pipelines.oneroster.client.time.sleep", lambda s: None)
    instance.add_dynamic_partitions("tenant", ["up", "down"])
    night = latest_complete_night()
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime.combine(
            night + timedelta(days=1), datetime.min.time(), UTC
        ),
        repository_def=defs.get_repository_def(),
    )
    requests = defs.resolve_schedule_def("nightly_schedule").evaluate_tick(context).run_requests
    assert sorted(r.tags["tenant"] for r in requests) == ["down", "up"]
    down = run_tenant_night(
        instance, "down", night, select="key:oneroster/orgs", force_refetch=True
    )
    up = run_tenant_night(instance, "up", night, select="group:oneroster")
    assert up.success and not down.success
    message = " ".join(down.errors)
    assert (
        "tenant 'down'" in message
        and "/ims/oneroster/v1p1/orgs" in message
        and "connection failed" in message
    )


def test_the_schedule_tick_yields_one_run_per_demo_tenant(workspace, monkeypatch):
    instance, _, _ = workspace
    demo = ROOT / "sis_pipelines" / "demo" / "tenants.yaml"
    monkeypatch.setenv("SIS_PIPELINES_TENANTS", str(demo))
    sensor = defs.resolve_sensor_def("tenant_onboarding_sensor")
    [request] = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
    ).dynamic_partitions_requests
    instance.add_dynamic_partitions("tenant", list(request.partition_keys))
    when = datetime(2026, 11, 22, 2, 30, tzinfo=UTC)
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    requests = defs.resolve_schedule_def("nightly_schedule").evaluate_tick(context).run_requests
    assert sorted(r.partition_key for r in requests) == [
        f"2026-11-21|{t}"
        for t in ("demo-focus", "demo-genesis", "demo-infinite-campus", "demo-progressbook")
    ]
    assert {r.tags["sis_vendor"] for r in requests} == {
        "genesis",
        "focus",
        "progressbook",
        "infinite_campus",
    }
    assert len({r.run_key for r in requests}) == 4


def test_a_queued_run_whose_daemon_stopped_is_one_line_not_a_wait(monkeypatch):
    """The daemon beat when the run was queued, and stopped after (make ui closed): the
    command says what to do instead of waiting for a launch that never comes."""
    from sis_pipelines.core.errors import ConfigurationError
    from sis_pipelines.operate import runs

    monkeypatch.setattr(runs, "DAEMON_RECHECK_S", 0.0)
    monkeypatch.setattr(runs, "daemon_beats", lambda instance, daemon: False)
    queued = SimpleNamespace(status=dg.DagsterRunStatus.QUEUED, is_finished=False)
    nothing = SimpleNamespace(cursor=None, records=[], has_more=False)
    # The instance as the follower sees it: the run stays queued, no event comes.
    instance = SimpleNamespace(
        get_run_by_id=lambda run_id: queued,
        get_records_for_run=lambda run_id, cursor, of_type: nothing,
    )
    with pytest.raises(ConfigurationError, match="daemon that launches queued runs has stopped"):
        list(runs._follow_queued(instance, "r1", print))
