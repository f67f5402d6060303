"""What a data engineer watches of one district: the headline figures of each of its nights
(trends), and whether its nights keep arriving (freshness), each tenant on its own.

Plain Python: the Dagster layer turns trends into observations of the tenant's own asset and
arrivals into the tenant's freshness check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from ..oneroster.collections import COLLECTIONS

# asset (as "group/name") -> {figure of its step: the tenant's trend of that name}
TRENDS: dict[str, dict[str, str]] = {
    **{
        f"oneroster/{name}": {
            "dagster/row_count": f"{name}_rows",
            "quarantined": f"{name}_quarantined",
            "repaired": f"{name}_repaired",
        }
        for name in COLLECTIONS
    },
    "canvas/mapping": {"out_of_scope": "canvas_out_of_scope"},
    "canvas/delta": {
        "rows": "canvas_changes",
        "add_rows": "canvas_adds",
        "update_rows": "canvas_updates",
        "delete_rows": "canvas_deletes",
        "conclude_rows": "canvas_conclusions",
    },
    "gpb/push": {
        "sent": "grades_sent",
        "failed": "grades_failed",
        "skipped": "grades_kept_in_sis",
    },
}
WARN_AFTER = 1  # nights missing: the night just ended has not arrived (yet)
FAIL_AFTER = 2  # nights missing: a night went by without it


# Figures whose names start so are trends of the same name (one per reason a scope left out).
TREND_PREFIXES = {"canvas/mapping": "out_of_scope: "}


def trend(asset: str, figures: Mapping[str, object]) -> dict[str, int | float]:
    """The figures of an asset's step that make the tenant's trends, by trend name."""
    wanted = dict(TRENDS.get(asset, {}))
    if prefix := TREND_PREFIXES.get(asset):
        wanted |= {f: f"canvas_{f}" for f in figures if f.startswith(prefix)}
    return {
        name: value
        for figure, name in wanted.items()
        if isinstance(value := figures.get(figure), int | float) and not isinstance(value, bool)
    }


@dataclass(frozen=True)
class Arrival:
    """Whether a tenant's nights arrive: the last one that did, and how many are missing."""

    tenant: str
    expected: date
    last_night: date | None

    @property
    def missing(self) -> int:
        """Nights from the last one that arrived to the expected one (all of them if none did)."""
        if self.last_night is None:
            return -1
        return max((self.expected - self.last_night).days, 0)

    @property
    def fresh(self) -> bool:
        return self.last_night is not None and self.missing < FAIL_AFTER

    @property
    def late(self) -> bool:
        """Arrived, but the night just ended has not (a warning, not yet a failure)."""
        return self.fresh and self.missing >= WARN_AFTER

    def describe(self) -> str:
        if self.last_night is None:
            return f"tenant {self.tenant!r}: no night has arrived yet (expected {self.expected})"
        if self.missing == 0:
            return f"tenant {self.tenant!r}: night {self.expected} arrived"
        return (
            f"tenant {self.tenant!r}: last night arrived {self.last_night}, "
            f"{self.missing} night(s) behind {self.expected}"
        )


def arrivals(
    tenant_ids: Iterable[str], arrived_keys: Iterable[str], expected: date
) -> dict[str, Arrival]:
    """Each tenant's arrival, from the partition keys (``night|tenant``) that arrived."""
    wanted = set(tenant_ids)
    last: dict[str, str] = {}
    for key in arrived_keys:
        night, _, tenant = key.partition("|")
        if tenant in wanted and night > last.get(tenant, ""):
            last[tenant] = night
    return {
        t: Arrival(t, expected, date.fromisoformat(last[t]) if t in last else None)
        for t in sorted(wanted)
    }
