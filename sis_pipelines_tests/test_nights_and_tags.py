"""Nights end in the deployment's time zone; run tags are named and parsed in one place."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from sis_pipelines.cli import main
from sis_pipelines.core.nights import end_of_night, utc_stamp
from sis_pipelines.core.tags import DELIBERATE, RunFlags, on, tenant_tags


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC", datetime(2026, 11, 21, 23, 59, 59, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 11, 22, 4, 59, 59, tzinfo=UTC)),  # EST, UTC-5
        ("Pacific/Auckland", datetime(2026, 11, 21, 10, 59, 59, tzinfo=UTC)),  # NZDT, UTC+13
    ],
)
def test_a_night_ends_at_midnight_in_the_deployments_time_zone(monkeypatch, zone, expected):
    monkeypatch.setenv("SIS_PIPELINES_TIMEZONE", zone)
    end = end_of_night(date(2026, 11, 21))
    assert end == expected and end.tzinfo is UTC
    assert utc_stamp(end) == expected.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_run_flags_are_read_from_the_tags_the_cli_writes():
    assert RunFlags.of({}) == RunFlags()
    every = on(*(tag for tag, _ in DELIBERATE.values()))
    flags = RunFlags.of({**every, "sis_pipelines/force_refetch": "TRUE"})
    assert flags.allow_mass_removal and flags.force_upload and flags.force_push
    assert flags.force_refetch and flags.backfill is None
    assert not RunFlags.of({"sis_pipelines/force_push": "yes"}).force_push  # only "true" counts
    # A Dagster backfill and our own backfill command both mark a run as a backfill.
    assert RunFlags.of({"dagster/backfill": "abc"}).backfill == "dagster/backfill"
    assert RunFlags.of({"sis_pipelines/backfill": "a..b"}).backfill == "sis_pipelines/backfill"
    assert tenant_tags("t-1", "focus") == {"tenant": "t-1", "sis_vendor": "focus"}


def test_tenants_sync_warns_past_the_partition_budget(workspace, monkeypatch, capsys):
    instance, _, tenants = workspace
    tenants.write_text(
        """
tenants:
  a-1: {vendor: genesis, oneroster: {version: "1.1", source: simulator}}
  a-2: {vendor: focus, oneroster: {version: "1.1", source: simulator}}
"""
    )
    monkeypatch.setattr("sis_pipelines.operate.dagster_instance", lambda: instance)
    assert main(["tenants", "sync"]) == 0
    assert "warning" not in capsys.readouterr().out
    # Two tenants over nights since 1800: far more partitions than Dagster recommends.
    monkeypatch.setenv("SIS_PIPELINES_FIRST_NIGHT", "1800-01-01")
    assert main(["tenants", "sync"]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "SIS_PIPELINES_FIRST_NIGHT" in out
    assert sorted(instance.get_dynamic_partitions("tenant")) == ["a-1", "a-2"]
    # A first night that is no date: one line naming the variable, exit code 2.
    monkeypatch.setenv("SIS_PIPELINES_FIRST_NIGHT", "2026-13-01")
    assert main(["tenants", "sync"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SIS_PIPELINES_FIRST_NIGHT must be" in err
    assert "'2026-13-01'" in err


def test_an_operators_mistake_is_exit_2_and_a_bug_is_one_line_saying_so(monkeypatch, capsys):
    """The CLI explains what is in the error tree (a usage mistake included) and nothing else:
    a library's ValueError is a bug, said in one line (exit 1), its traceback under --verbose."""
    assert main(["evaluate", "--tenant", "t", "--night", "2026-02-30"]) == 2
    assert capsys.readouterr().err == (
        "sis-pipelines: night must be YYYY-MM-DD or 'latest', not '2026-02-30'\n"
    )

    def broken(*args, **kwargs):
        raise ValueError("cannot convert float NaN to integer\n  (and more lines)")

    monkeypatch.setattr("sis_pipelines.operate.check_connections", broken)
    assert main(["tenants", "check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sis-pipelines: bug: ValueError: cannot convert float NaN to integer")
    assert err.count("\n") == 1 and "--verbose" in err
    with pytest.raises(ValueError, match="NaN"):
        main(["--verbose", "tenants", "check"])
