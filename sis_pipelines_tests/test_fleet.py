"""A small fleet on a real deployment (make fleet at N=5): a fresh PostgreSQL database, the
daemon and the webserver as processes of their own, the onboarding sensor registering the
districts, the nightly tick's runs launched by the daemon's queue within the limits, the district
whose SIS is down and the one whose Canvas fails imports failing alone, explained, and the
others stored and imported."""

from __future__ import annotations

import json

from bench.fleet import BROKEN_CANVAS, DOWN, fleet_night, most_in_flight
from sis_pipelines.core.nights import latest_complete_night


def test_most_in_flight_counts_overlaps_per_key():
    spans = [(0, 10, "a"), (5, 15, "a"), (10, 20, "a"), (0, 30, "b")]
    assert most_in_flight(spans) == {"a": 2, "b": 1}


def test_a_fleet_night_under_the_daemon(tmp_path):
    night = latest_complete_night()
    result = fleet_night(5, night, tmp_path, timeout=900)
    assert result.succeeded == ["fleet-000", "fleet-001", "fleet-002"]
    assert set(result.failed) == {DOWN, BROKEN_CANVAS}
    # Each failed night was run once more by the instance's run retry policy, and only those.
    assert result.retried == sorted([DOWN, BROKEN_CANVAS]) and result.runs == 7
    assert "503" in result.failed[DOWN] and DOWN in result.failed[DOWN]
    assert "failed_with_messages" in result.failed[BROKEN_CANVAS], result.failed
    assert result.per_tenant == 1 and result.per_vendor.get("infinite_campus", 0) <= 2
    assert result.in_flight <= 8
    for tenant in result.succeeded:
        assert (
            tmp_path / "data" / "oneroster" / "enrollments" / str(night) / f"{tenant}.parquet"
        ).exists()
        applied = json.loads((tmp_path / "data" / "canvas_applied" / f"{tenant}.json").read_text())
        assert applied[str(night)]["workflow_state"] == "imported"
    # Nothing of the failed district's night is stored half-done.
    assert not list((tmp_path / "data" / "oneroster").glob(f"*/{night}/{DOWN}.parquet"))
