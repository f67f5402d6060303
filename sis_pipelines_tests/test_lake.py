"""The lake: one owner of every stored path and piece of state."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest
from upath import UPath

from sis_pipelines.core.lake import Lake
from sis_pipelines.defs.io_manager import ParquetIO

NIGHT = "2026-11-21"


def test_every_path_follows_the_interface(tmp_path):
    lake = Lake.at(tmp_path)
    expected = {
        lake.snapshot("users", NIGHT, "t-1"): "oneroster/users/2026-11-21/t-1.parquet",
        lake.quarantine("users", NIGHT, "t-1"): "quarantine/users/2026-11-21/t-1.parquet",
        lake.changes(NIGHT, "t-1"): "canvas/changes/2026-11-21/t-1.parquet",
        lake.sis_import_zip(NIGHT, "t-1"): "canvas/sis_import/2026-11-21/t-1.zip",
        lake.gpb_requests(NIGHT, "t-1"): "gpb/requests/2026-11-21/t-1.jsonl",
        lake.gpb_outcomes(NIGHT, "t-1"): "gpb/outcomes/2026-11-21/t-1.parquet",
        lake.canvas_file(
            "enrollments", NIGHT, "t-1"
        ): "canvas_mapping/enrollments/2026-11-21/t-1.parquet",
        lake.gpb_ledger_file("t-1"): "gpb/ledger/t-1.parquet",
        lake.canvas_applied("t-1").path: "canvas_applied/t-1.json",
        lake.gpb_passes("t-1").path: "gpb/passes/t-1.json",
    }
    for path, tail in expected.items():
        assert str(path) == str(UPath(tmp_path) / tail)


def test_the_io_manager_stores_an_asset_where_the_lake_says(tmp_path):
    io = ParquetIO(base_path=UPath(tmp_path))
    key = dg.MultiPartitionKey({"night": NIGHT, "tenant": "t-1"})
    context = dg.build_output_context(
        asset_key=dg.AssetKey(["oneroster", "users"]),
        partition_key=str(key),
        asset_partitions_def=dg.MultiPartitionsDefinition(
            {
                "night": dg.DailyPartitionsDefinition(start_date="2026-08-01"),
                "tenant": dg.StaticPartitionsDefinition(["t-1"]),
            }
        ),
    )
    [path] = io._get_paths_for_partitions(context).values()
    assert path == Lake.at(tmp_path).snapshot("users", NIGHT, "t-1")


@pytest.mark.parametrize("tenant", ["../x", "a/b", "A", ""])
def test_state_files_refuse_hostile_tenants(tmp_path, tenant):
    lake = Lake.at(tmp_path)
    for state in (lake.canvas_applied, lake.gpb_passes, lake.gpb_ledger_file):
        with pytest.raises(ValueError):
            state(tenant)


def test_a_night_log_records_nights_and_tells_before_and_after(tmp_path):
    log = Lake.at(tmp_path).canvas_applied("t-1")
    assert log.read() == {} and log.before(date(2026, 11, 21)) == []
    log.record(date(2026, 11, 20), {"import_id": 1})
    log.record("2026-11-22", {"import_id": 3})
    again = Lake.at(tmp_path).canvas_applied("t-1")
    assert again.read() == {"2026-11-20": {"import_id": 1}, "2026-11-22": {"import_id": 3}}
    assert again.before(date(2026, 11, 22)) == ["2026-11-20"]
    assert again.after(date(2026, 11, 20)) == ["2026-11-22"]
    assert not list(again.path.parent.glob(".*.tmp"))  # written atomically


def test_stored_nights_are_the_nights_with_a_file_of_the_tenant(tmp_path):
    lake = Lake.at(tmp_path)
    for night, tenant in [("2026-11-19", "t-1"), ("2026-11-21", "t-1"), ("2026-11-20", "t-2")]:
        path = lake.snapshot("users", night, tenant)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert lake.snapshot_nights("users", "t-1") == ["2026-11-19", "2026-11-21"]
    assert lake.snapshot_nights("orgs", "t-1") == []
