"""The lake: every stored file and every piece of state under SIS_PIPELINES_DATA_DIR.

This module alone knows the layout (``../shared/spec/interfaces.md``); the IO manager derives
its paths from it, and every name that becomes a path segment is validated here, so no
tenant, night or collection can name a path outside the root.

State that outlives a night has two shapes: a *night log* per tenant (the nights applied to
Canvas, the nights whose grades were pushed: JSON, a line per night) and the grade passback
*ledger* (every gradebook object we created in the SIS: Parquet, a row per object).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from upath import UPath

from .storage import atomic_write_bytes, read_typed
from .tenants import TENANT_ID_PATTERN

_TENANT = re.compile(TENANT_ID_PATTERN)
_NIGHT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAME = re.compile(r"^[a-z_]+$")

# Areas of per-night files: <area>/<kind>/<night>/<tenant><suffix>.
SNAPSHOTS = "oneroster"
QUARANTINE = "quarantine"
REPAIRS = "repairs"
EVALUATE = "evaluate"
CANVAS_MAPPING = "canvas_mapping"
CANVAS_RETAINED = "canvas_retained"
CANVAS = "canvas"
GRADEBOOK = "gpb/canvas_gradebook"
GPB = "gpb"


def data_dir() -> str:
    return os.environ.get("SIS_PIPELINES_DATA_DIR", "data")


def checked(kind: str, night: str, tenant: str) -> None:
    # Defence in depth: ids are validated when the tenants file is read, and again here.
    if not _NAME.match(kind):
        raise ValueError(f"invalid collection name {kind!r}")
    if not _NIGHT.match(night):
        raise ValueError(f"invalid night {night!r}")
    if not _TENANT.match(tenant):
        raise ValueError(f"invalid tenant id {tenant!r}")


class NightLog:
    """Nights a tenant applied somewhere (Canvas imports, grade pushes): night -> entry."""

    def __init__(self, path: UPath):
        self.path = path

    def read(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def record(self, night: date | str, entry: dict[str, Any]) -> None:
        log = self.read()
        log[str(night)] = entry
        atomic_write_bytes(json.dumps(log, indent=1, sort_keys=True).encode(), self.path)

    def before(self, night: date | str) -> list[str]:
        """Logged nights earlier than ``night``, ascending."""
        return sorted(n for n in self.read() if n < str(night))

    def after(self, night: date | str) -> list[str]:
        return sorted(n for n in self.read() if n > str(night))


@dataclass(frozen=True)
class Lake:
    root: UPath

    @classmethod
    def at(cls, root: str | UPath | None = None) -> Lake:
        """The lake at ``root``, or at SIS_PIPELINES_DATA_DIR read now (when a run starts)."""
        return cls(UPath(root or data_dir()))

    # -- per-night files -------------------------------------------------------------------

    def file(self, area: str, kind: str, night: date | str, tenant: str, suffix: str = ".parquet"):
        night = str(night)
        checked(kind, night, tenant)
        return self.root / area / kind / night / f"{tenant}{suffix}"

    def asset_file(self, key: Sequence[str], night: date | str, tenant: str) -> UPath:
        """Where the IO manager stores an asset's partition: ``<key>/<night>/<tenant>.parquet``."""
        *area, kind = key
        return self.file("/".join(area), kind, night, tenant)

    def snapshot(self, collection: str, night: date | str, tenant: str) -> UPath:
        return self.asset_file([SNAPSHOTS, collection], night, tenant)

    def quarantine(self, collection: str, night: date | str, tenant: str) -> UPath:
        return self.file(QUARANTINE, collection, night, tenant)

    def repairs(self, collection: str, night: date | str, tenant: str) -> UPath:
        """The fields repaired in kept records: sourcedId, field, the SIS's value, reason."""
        return self.file(REPAIRS, collection, night, tenant)

    def evaluation(self, night: date | str, tenant: str) -> UPath:
        """What a night would change in Canvas as it stands: file, sis_id, action, reason."""
        return self.file(EVALUATE, "changes", night, tenant)

    def evaluation_report(self, night: date | str, tenant: str) -> UPath:
        """The same, summed up per Canvas file with examples (Markdown)."""
        return self.file(EVALUATE, "report", night, tenant, suffix=".md")

    def conversion(self, night: date | str, tenant: str, suffix: str = ".parquet") -> UPath:
        """A SIS conversion's matching, per type (``.md``: the same for people to read)."""
        return self.file(EVALUATE, "conversion", night, tenant, suffix=suffix)

    def canvas_file(self, name: str, night: date | str, tenant: str) -> UPath:
        """One Canvas SIS CSV (accounts, terms, …) of the full state a night implies."""
        return self.file(CANVAS_MAPPING, name, night, tenant)

    def out_of_scope(self, night: date | str, tenant: str) -> UPath:
        """The night's records the tenant's scope left out: collection, sourcedId, reason."""
        return self.file(CANVAS_MAPPING, "out_of_scope", night, tenant)

    def canvas_retained(self, name: str, night: date | str, tenant: str) -> UPath:
        """The rows of one Canvas file (terms, courses, sections) kept in Canvas after they
        left the SIS, as the night left them: with the night's mapping, its whole state."""
        return self.file(CANVAS_RETAINED, name, night, tenant)

    def changes(self, night: date | str, tenant: str) -> UPath:
        return self.file(CANVAS, "changes", night, tenant)

    def sis_import_zip(self, night: date | str, tenant: str) -> UPath:
        return self.file(CANVAS, "sis_import", night, tenant, ".zip")

    def gradebook_frame(self, name: str, night: date | str, tenant: str) -> UPath:
        return self.file(GRADEBOOK, name, night, tenant)

    def gradebook_window(self, night: date | str, tenant: str) -> UPath:
        return self.file(GRADEBOOK, "window", night, tenant, ".json")

    def gpb_requests(self, night: date | str, tenant: str) -> UPath:
        return self.file(GPB, "requests", night, tenant, ".jsonl")

    def gpb_outcomes(self, night: date | str, tenant: str) -> UPath:
        return self.file(GPB, "outcomes", night, tenant)

    def gpb_report(self, night: date | str, tenant: str) -> UPath:
        return self.file(GPB, "report", night, tenant)

    def stored_nights(self, area: str, kind: str, tenant: str) -> list[str]:
        """Nights (YYYY-MM-DD, ascending) with a stored Parquet file of this kind for the tenant."""
        folder = self.file(area, kind, "2000-01-01", tenant).parent.parent
        if not folder.exists():
            return []
        return sorted(
            p.name
            for p in folder.iterdir()
            if _NIGHT.match(p.name) and (p / f"{tenant}.parquet").exists()
        )

    def snapshot_nights(self, collection: str, tenant: str) -> list[str]:
        return self.stored_nights(SNAPSHOTS, collection, tenant)

    # -- state across nights ---------------------------------------------------------------

    def _tenant_file(self, area: str, tenant: str, suffix: str) -> UPath:
        if not _TENANT.match(tenant):
            raise ValueError(f"invalid tenant id {tenant!r}")
        return self.root / area / f"{tenant}{suffix}"

    def canvas_applied(self, tenant: str) -> NightLog:
        """Nights applied to Canvas: night -> {import_id, workflow_state}."""
        return NightLog(self._tenant_file("canvas_applied", tenant, ".json"))

    def canvas_enrolled(self, tenant: str) -> UPath:
        """Every Canvas course and section that ever had an enrollment in a night applied to
        Canvas (``file``, ``sis_id``): a course that never had one may be deleted."""
        return self._tenant_file("canvas_enrolled", tenant, ".parquet")

    def canvas_uploads(self, tenant: str) -> NightLog:
        """Uploads begun: night -> {zip_sha256, started_at, import_id once Canvas answered},
        written before the zip leaves and as soon as Canvas names the import, so a re-run
        after a crash follows that import instead of sending the night again."""
        return NightLog(self._tenant_file("canvas_uploads", tenant, ".json"))

    def gpb_passes(self, tenant: str) -> NightLog:
        """Nights whose grade push completed: night -> {graded_until}."""
        return NightLog(self._tenant_file("gpb/passes", tenant, ".json"))

    def gpb_ledger_file(self, tenant: str) -> UPath:
        return self._tenant_file("gpb/ledger", tenant, ".parquet")

    def gpb_ledger_journal(self, tenant: str) -> UPath:
        """A folder of what a push changed since the ledger was last stored whole: a Parquet
        file per part, in order (gone once the push stores the ledger)."""
        return self._tenant_file("gpb/ledger_journal", tenant, "")

    def read_gpb_ledger(self, tenant: str, empty: pd.DataFrame) -> pd.DataFrame:
        """The gradebook objects we created in the tenant's SIS (``empty`` gives the columns)."""
        path = self.gpb_ledger_file(tenant)
        if not path.exists():
            return empty
        # A ledger written by an earlier release lacks later columns: empty, filled by its reader.
        return read_typed(path, dict(empty.dtypes.items()))

    def gateway_rejects(self, night: date | str, tenant: str) -> UPath:
        """A CSV Gateway drop's rows Canvas would refuse: file, line, column, reason, row."""
        return self.file(QUARANTINE, "canvas_csv", night, tenant)

    def gpb_sync(self, tenant: str, stamp: str, name: str, suffix: str = ".parquet") -> UPath:
        """What an intraday grade sync sent (``requests.jsonl``) and how it went."""
        return self._tenant_file("gpb/syncs", tenant, "") / stamp / f"{name}{suffix}"

    def simulator_state(self, service: str) -> Path:
        """A local folder where the bundled simulators keep their state across runs."""
        return Path(str(self.root).removeprefix("file://")) / "simulator" / service
