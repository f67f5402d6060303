"""The ledger through a push: the stored ledger stays as it was read, what each part of the
push changed is kept beside it (in memory, and in a journal file per part, so a night cut
short keeps what the SIS took), and the ledger is stored whole once, at the end.

A district's ledger is a row per result we ever sent (close to a million rows): storing it
after every part that sent something made it a copy of the whole each time, and three at
once while merging.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
import pyarrow as pa

from ..lake import Lake
from ..storage import read_frame, write_frame, write_tables
from .removals import LEDGER_COLUMNS, empty_ledger

REMOVED = "removed"  # a journal row whose key left the ledger (its other columns empty)
SLICE_ROWS = 1 << 17  # the stored ledger is written this many rows at a time


def merged(ledger: pd.DataFrame, fresh: pd.DataFrame, removed: set[str]) -> pd.DataFrame:
    """The ledger with ``fresh`` rows in place of those of the same key, ``removed`` gone."""
    gone = ledger["key"].isin(set(fresh["key"]) | removed).to_numpy(bool)
    return pd.concat([ledger[~gone], fresh], ignore_index=True)


def journaled(lake: Lake, tenant_id: str, ledger: pd.DataFrame) -> pd.DataFrame:
    """The stored ledger with a cut-short push's journal applied, in the order it was kept."""
    for entry in _entries(lake, tenant_id):
        changes = read_frame(entry)
        removed = changes[REMOVED].to_numpy(bool)
        fresh = changes[~removed].drop(columns=[REMOVED]).astype(LEDGER_COLUMNS)
        ledger = merged(ledger, fresh, set(changes.loc[removed, "key"]))
    return ledger


def _entries(lake: Lake, tenant_id: str) -> list:
    folder = lake.gpb_ledger_journal(tenant_id)
    return sorted(folder.glob("*.parquet")) if folder.exists() else []


class LedgerChanges:
    """A push's changes to ``ledger`` (as ``state.read_ledger`` gives it), part by part."""

    def __init__(self, lake: Lake, tenant_id: str, ledger: pd.DataFrame) -> None:
        self.lake, self.tenant_id, self.ledger = lake, tenant_id, ledger
        self.fresh = empty_ledger()  # the rows the SIS took in this push, a row per key
        self.changed: set[str] = set()  # keys of the ledger replaced or removed
        self._next = len(_entries(lake, tenant_id))

    def concerning(self, rows_of: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
        """The rows ``rows_of`` picks, from the ledger as the push has changed it so far."""
        stored = rows_of(self.ledger)
        stored = stored[~stored["key"].isin(self.changed).to_numpy(bool)]
        return pd.concat([stored, rows_of(self.fresh)], ignore_index=True)

    def record(self, fresh: pd.DataFrame, removed: set[str]) -> None:
        """A part's changes: journaled first, then kept."""
        if fresh.empty and not removed:
            return
        gone = pd.DataFrame({"key": sorted(removed)}).astype({"key": LEDGER_COLUMNS["key"]})
        entry = pd.concat(
            [fresh.assign(**{REMOVED: False}), gone.assign(**{REMOVED: True})], ignore_index=True
        )
        folder = self.lake.gpb_ledger_journal(self.tenant_id)
        write_frame(
            entry.astype({**LEDGER_COLUMNS, REMOVED: bool}), folder / f"{self._next:08d}.parquet"
        )
        self._next += 1
        keys = set(fresh["key"]) | removed
        self.changed |= keys
        self.fresh = merged(self.fresh, fresh, removed)

    def store(self) -> None:
        """The ledger whole, a slice at a time; then the journal goes (applied again to the
        stored ledger it would change nothing)."""
        entries = _entries(self.lake, self.tenant_id)
        if not (self.changed or len(self.fresh) or entries) and self._stored():
            return  # most nights change a small part of a large ledger; some change nothing
        write_tables(self._tables(), self.lake.gpb_ledger_file(self.tenant_id))
        for entry in entries:
            entry.unlink()

    def _stored(self) -> bool:
        return self.lake.gpb_ledger_file(self.tenant_id).exists()

    def _tables(self) -> Iterator[pa.Table]:
        def table(frame: pd.DataFrame) -> pa.Table:
            return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)

        ledger = self.ledger
        for start in range(0, len(ledger), SLICE_ROWS):
            rows = ledger.iloc[start : start + SLICE_ROWS]
            yield table(rows[~rows["key"].isin(self.changed).to_numpy(bool)])
        yield table(self.fresh.astype(LEDGER_COLUMNS))
