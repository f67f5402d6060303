"""``python -m sis_pipelines.demo``: register the demo tenants, run two nights, summarise."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

DEMO_TENANTS = Path(__file__).with_name("tenants.yaml")


def _environment() -> None:
    os.environ.setdefault("SIS_PIPELINES_TENANTS", str(DEMO_TENANTS))
    os.environ.setdefault("SIS_PIPELINES_DATA_DIR", str(Path("data").resolve()))
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")


def main() -> int:
    _environment()
    from ..cli import _instance, run_tenant_night, sync_tenants
    from ..lake import Lake
    from ..nights import latest_complete_night
    from ..oneroster.collections import COLLECTIONS
    from ..storage import parquet_rows, read_frame
    from ..tenants import load_tenants

    instance = _instance()
    print("Registering the demo tenants:")
    sync_tenants(instance)
    latest = latest_complete_night()
    nights = [latest - timedelta(days=1), latest]
    outcomes = []
    for night in nights:
        for tenant in load_tenants().tenants:
            print(f"Materializing {tenant} for {night} …", flush=True)
            outcomes.append(run_tenant_night(instance, tenant, night))
    lake = Lake.at()
    root = lake.root
    print()
    print(f"{'tenant':<22} {'night':<11} {'collection':<18} {'rows':>8} {'quarantined':>11}")
    for outcome in outcomes:
        for name in COLLECTIONS:
            snapshot = lake.snapshot(name, outcome.night, outcome.tenant)
            quarantine = lake.quarantine(name, outcome.night, outcome.tenant)
            rows = parquet_rows(snapshot) if snapshot.exists() else "-"
            bad = parquet_rows(quarantine) if quarantine.exists() else "-"
            print(f"{outcome.tenant:<22} {outcome.night!s:<11} {name:<18} {rows!s:>8} {bad!s:>11}")
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
            f"{outcome.tenant:<22} {outcome.night!s:<11} {total:>14}  {by_action:<44} {state:<24} {_gpb(lake, outcome)}"
        )
    print()
    print(f"Snapshots:  {root}/oneroster/<collection>/<night>/<tenant>.parquet")
    print(f"Quarantine: {root}/quarantine/<collection>/<night>/<tenant>.parquet")
    print(
        f"Canvas:     {root}/canvas/changes/<night>/<tenant>.parquet and canvas/sis_import/<night>/<tenant>.zip"
    )
    print(
        f"Grade passback: {root}/gpb/requests/<night>/<tenant>.jsonl and gpb/outcomes/<night>/<tenant>.parquet"
    )
    print(f"Dagster instance: {os.environ['DAGSTER_HOME']}  (look at it with `make ui`)")
    failed = [o for o in outcomes if not o.success]
    for o in failed:
        print(f"FAILED: {o.tenant} {o.night}: {'; '.join(o.errors)}", file=sys.stderr)
    return 1 if failed else 0


def _gpb(lake, outcome) -> str:
    """The night's push: requests sent, unchanged (already in the SIS), failed or skipped."""
    from ..storage import read_frame

    outcomes = lake.gpb_outcomes(outcome.night, outcome.tenant)
    if not outcomes.exists():
        requests = lake.gpb_requests(outcome.night, outcome.tenant)
        return "computed, not pushed" if requests.exists() else "-"
    status = read_frame(outcomes)["status"].astype(str).value_counts()
    sent, unchanged = int(status.get("sent", 0)), int(status.get("unchanged", 0))
    return f"{sent} / {unchanged} / {int(status.sum()) - sent - unchanged}"


if __name__ == "__main__":
    sys.exit(main())
