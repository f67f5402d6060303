"""``python -m sis_pipelines.demo``: register the demo tenants, run two nights, summarise."""

from __future__ import annotations

import os
import sys
from datetime import date, timedelta
from pathlib import Path

DEMO_TENANTS = Path(__file__).with_name("tenants.yaml")
# The pipeline's own warnings (a SIS that clamps its page size…) go to the run's log in the UI.
INSTANCE_YAML = (
    "telemetry:\n  enabled: false\npython_logs:\n  managed_python_loggers: [sis_pipelines]\n"
)
DEMO_WEEK = 7  # the demo's partitions start this many nights before the latest
# make demo ROLLOVER=1: one tenant also runs the school year's rollover night (and the one
# before), before the demo's own nights.
ROLLOVER = os.environ.get("SIS_PIPELINES_DEMO_ROLLOVER", "") not in ("", "0")
ROLLOVER_TENANT = "demo-progressbook"


def rollover_nights() -> list[date]:
    """The night before this school year's rollover, and the rollover (1 August)."""
    from ..core.nights import latest_complete_night
    from ..simulator.calendar import ROLLOVER_MONTH_DAY, school_year_of

    latest = latest_complete_night()
    rollover = date(school_year_of(latest), *ROLLOVER_MONTH_DAY)
    if rollover >= latest - timedelta(days=1):  # the demo's own nights hold it
        return []
    return [rollover - timedelta(days=1), rollover]


def demo_first_night() -> str:
    """Where the demo's nights start: a week back, so its partitions are the nights it runs
    (with ROLLOVER, from the night before the rollover)."""
    from ..core.nights import latest_complete_night

    first = latest_complete_night() - timedelta(days=DEMO_WEEK)
    if ROLLOVER and rollover_nights():
        first = min(first, rollover_nights()[0])
    return first.isoformat()


def _environment() -> None:
    os.environ.setdefault("SIS_PIPELINES_TENANTS", str(DEMO_TENANTS))
    os.environ.setdefault("SIS_PIPELINES_DATA_DIR", str(Path("data").resolve()))
    os.environ.setdefault("SIS_PIPELINES_FIRST_NIGHT", demo_first_night())
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML)


def main() -> int:
    _environment()
    from ..cli import main as cli
    from ..core.lake import Lake
    from ..core.nights import latest_complete_night
    from ..core.storage import parquet_rows, read_frame
    from ..core.tenants import load_tenants
    from ..oneroster.collections import COLLECTIONS
    from ..operate import (
        check_freshness,
        dagster_instance,
        quiet_dagster,
        run_tenant_night,
        sync_tenants,
    )
    from . import grades

    quiet_dagster()
    instance = dagster_instance()
    print("Registering the demo tenants:")
    sync_tenants(instance)
    latest = latest_complete_night()
    nights = [latest - timedelta(days=1), latest]
    outcomes = []
    if ROLLOVER and rollover_nights():
        outcomes += _rollover(instance, run_tenant_night)
    day = None
    for night in nights:
        if night == latest:  # between the nights, a teacher changes a gradebook in Canvas
            day = grades.teacher_day(Lake.at(), night)
        for tenant in load_tenants().tenants:
            print(f"Materializing {tenant} for {night} …", flush=True)
            outcomes.append(run_tenant_night(instance, tenant, night))
    if day is not None:
        grades.convergence(Lake.at(), latest, day)
    print()
    grades.within_minutes(instance, Lake.at())
    # A term change re-derives Canvas from stored nights: a Dagster backfill (Backfills page).
    print()
    print("Backfilling demo-progressbook's Canvas mapping and delta over the demo's nights:")
    select = "key:canvas/mapping or key:canvas/delta"
    span = ["--from", str(nights[0]), "--to", str(latest)]
    cli(["backfill", "--tenant", "demo-progressbook", *span, "--select", select])
    print()
    print("Whether each tenant's nights arrive (tenants/<tenant>: night_arrived):")
    check_freshness(instance)
    lake = Lake.at()
    root = lake.root
    print()
    shown = ("users", "classes", "enrollments")
    print(
        f"{'tenant':<22} {'night':<11} "
        + " ".join(f"{n:>11}" for n in shown)
        + f"  {'repaired':<22} {'quarantined':<22}"
    )

    def rows(path) -> int:
        return parquet_rows(path) if path.exists() else 0

    def where(path_of, outcome) -> str:
        found = {
            name: n
            for name in COLLECTIONS
            if (n := rows(path_of(name, outcome.night, outcome.tenant)))
        }
        return ", ".join(f"{n} {name}" for name, n in found.items()) or "0"

    # A line a tenant-night: the largest collections, and where records were repaired or
    # quarantined (the rest are zeros).
    for outcome in outcomes:
        sizes = " ".join(
            f"{rows(lake.snapshot(n, outcome.night, outcome.tenant)):>11}" for n in shown
        )
        print(
            f"{outcome.tenant:<22} {outcome.night!s:<11} {sizes}  "
            f"{where(lake.repairs, outcome):<22} {where(lake.quarantine, outcome):<22}"
        )
    for kind, path_of in (("Quarantined", lake.quarantine), ("Repaired", lake.repairs)):
        example = _example(path_of, outcomes, list(COLLECTIONS))
        if example:
            print(f"{kind}, for example: {example}")
    print()
    print(
        f"{'tenant':<22} {'night':<11} {'canvas changes':>14}  {'by action':<44} {'canvas import':<24} {'gpb requests sent / unchanged / failed+skipped'}"
    )
    for outcome in outcomes:
        changes_path = lake.changes(outcome.night, outcome.tenant)
        if changes_path.exists():
            changes = read_frame(changes_path)
            by_action = (
                ", ".join(
                    f"{a} {n}" for a, n in changes["action"].value_counts().sort_index().items()
                )
                or "none"
            )
            total = str(len(changes))
        else:
            by_action, total = "-", "-"
        entry = lake.canvas_applied(outcome.tenant).read().get(str(outcome.night), {})
        state = entry.get("workflow_state", "not uploaded")
        if entry.get("import_id"):
            state = f"#{entry['import_id']} {state}"
        print(
            f"{outcome.tenant:<22} {outcome.night!s:<11} {total:>14}  {by_action:<44} {state:<24} {_gpb(instance, outcome)}"
        )
    print()
    print(f"Snapshots:  {root}/oneroster/<collection>/<night>/<tenant>.parquet")
    print(f"Quarantine: {root}/quarantine/<collection>/<night>/<tenant>.parquet")
    print(f"Repairs:    {root}/repairs/<collection>/<night>/<tenant>.parquet")
    print(
        f"Canvas:     {root}/canvas/changes/<night>/<tenant>.parquet and canvas/sis_import/<night>/<tenant>.zip"
    )
    print(
        f"Grade passback: {root}/gpb/requests/<night>/<tenant>.jsonl and gpb/outcomes/<night>/<tenant>.parquet"
    )
    print(f"Dagster instance: {os.environ['DAGSTER_HOME']}  (look at it with `make ui`)")
    print()
    print("What next:")
    print(
        "  make ui                 the runs, lineage, checks and each tenant's page (tenants/<tenant>)"
    )
    print(
        "  make canvas             grade in demo-genesis's Canvas, then watch the grades reach the SIS"
    )
    print(
        "  make demo ROLLOVER=1    the school year's rollover night (in a fresh data/ and .dagster_home/)"
    )
    print("  .venv/bin/sis-pipelines --help   run a night, backfill, evaluate, check connections")
    failed = [o for o in outcomes if not o.success]
    for o in failed:
        print(f"FAILED: {o.tenant} {o.night}: {'; '.join(o.errors)}", file=sys.stderr)
    return 1 if failed else 0


def _rollover(instance, run_tenant_night) -> list:
    """The school year's rollover for one tenant: the night before, then the rollover night,
    and the line that says what the rollover did in Canvas."""
    from ..core.lake import Lake
    from ..core.storage import read_frame

    outcomes = []
    before, rollover = rollover_nights()
    for night in (before, rollover):
        print(f"Materializing {ROLLOVER_TENANT} for {night} (the school year's rollover) …")
        outcomes.append(run_tenant_night(instance, ROLLOVER_TENANT, night))
    changes = read_frame(Lake.at().changes(rollover, ROLLOVER_TENANT))
    counts = changes.groupby(["file", "action"]).size()
    done = "; ".join(
        f"{file} " + ", ".join(f"{a} {int(n)}" for a, n in counts[file].items())
        for file in dict.fromkeys(changes["file"])
    )
    entry = Lake.at().canvas_applied(ROLLOVER_TENANT).read().get(str(rollover))
    if entry and entry.get("import_id"):
        how = f"the deletion guard passed; Canvas import #{entry['import_id']} {entry['workflow_state']}"
    else:
        how = "not imported: " + "; ".join(outcomes[-1].errors)
    print(f"Rollover night {rollover} of {ROLLOVER_TENANT}: {done}; {how}.")
    print()
    return outcomes


def _example(path_of, outcomes, collections: list[str]) -> str | None:
    """One record the nights quarantined (or repaired), and why: what a data engineer would
    look at first."""
    from ..core.storage import read_frame

    for outcome in outcomes:
        for name in collections:
            path = path_of(name, outcome.night, outcome.tenant)
            if path.exists() and len(frame := read_frame(path)):
                row = frame.iloc[0]
                return f"{outcome.tenant} {name} {row['sourcedId']}: {row['reason']} ({path})"
    return None


def _gpb(instance, outcome) -> str:
    """This run's push: requests sent, unchanged (already in the SIS), failed or skipped; or
    why it sent nothing (a stored outcomes file may be an earlier run's)."""
    import dagster as dg

    from ..defs.gpb.assets import PUSH

    events = instance.all_logs(outcome.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    pushes = [
        e.asset_materialization.metadata
        for e in events
        if e.asset_materialization and e.asset_materialization.asset_key == PUSH
    ]
    if not pushes:
        return "-"
    figures = {k: v.value for k, v in pushes[-1].items()}
    if "outcome" in figures:
        return str(figures["outcome"]).split(":")[0]
    sent, unchanged = int(figures.get("sent", 0)), int(figures.get("unchanged", 0))
    rest = int(figures.get("failed", 0)) + int(figures.get("skipped", 0))
    return f"{sent} / {unchanged} / {rest}"


if __name__ == "__main__":
    if sys.argv[1:] == ["--first-night"]:  # for the Makefile: make ui shows the same nights
        print(demo_first_night())
        sys.exit(0)
    sys.exit(main())
