"""The ledger through a push: the stored ledger stays as it was read, what each part of the
push changed goes to a journal file of its own as the part ends (so a night cut short keeps
what the SIS took), and the ledger is stored whole once, at the end, a slice at a time.
Within a part, each request the SIS acknowledges is appended to the part's acknowledgements
(a line each, written as it comes): a push killed mid-part leaves them, and the re-run sends
only what the SIS never acknowledged.

A district's ledger is a row per result we ever sent (close to a million rows), and a first
night sends as many: storing the ledger after every part made a copy of the whole each time
(three at once while merging), and holding the night's changes would hold another ledger.
The journal is read back only where a later part meets an earlier part's classes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from upath import UPath

from ..core.lake import Lake
from ..core.storage import read_typed, write_frame, write_tables
from .removals import LEDGER_COLUMNS, empty_ledger

REMOVED = "removed"  # a journal row whose key left the ledger (its other columns empty)
SLICE_ROWS = 1 << 17  # the stored ledger is written this many rows at a time


def merged(ledger: pd.DataFrame, fresh: pd.DataFrame, removed: set[str]) -> pd.DataFrame:
    """The ledger with ``fresh`` rows in place of those of the same key, ``removed`` gone."""
    gone = ledger["key"].isin(set(fresh["key"]) | removed).to_numpy(bool)
    return pd.concat([ledger[~gone], fresh], ignore_index=True)


ACKS = ".acks.jsonl"  # a part's acknowledgements, while it runs (and after a kill)


def read_entry(entry: UPath, dtypes: dict[str, Any]) -> pd.DataFrame:
    """A journal entry's ``dtypes`` columns: a part's Parquet file, or the acknowledgements a
    killed part left (a line cut by the kill is left out: its request was not acknowledged)."""
    if not entry.name.endswith(ACKS):
        return read_typed(entry, dtypes)
    rows = []
    for line in entry.read_bytes().splitlines():
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    frame = pd.DataFrame(rows, columns=list(dtypes)).astype("object")
    if REMOVED in frame:
        frame[REMOVED] = frame[REMOVED].fillna(False)
    return frame.astype(dtypes)


class Acknowledgements:
    """A part's acknowledged requests, a line each as the SIS answers (from several threads):
    written through to the file at once, so a killed process loses none it was told of."""

    SYNC_EVERY = 256  # lines between fsyncs (a machine that stops loses at most these)

    def __init__(self, path: UPath) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("ab", buffering=0)
        self._lock = threading.Lock()
        self._unsynced = 0

    def __call__(self, row: dict[str, Any]) -> None:
        line = orjson.dumps(row, default=str, option=orjson.OPT_APPEND_NEWLINE)
        with self._lock:
            self._fh.write(line)
            self._unsynced += 1
            if self._unsynced >= self.SYNC_EVERY:
                os.fsync(self._fh.fileno())
                self._unsynced = 0

    def done(self) -> None:
        """The part's entry holds them now: the file goes."""
        with self._lock:
            self._fh.close()
        self.path.unlink(missing_ok=True)


def _applied(ledger: pd.DataFrame, entries: list[UPath]) -> pd.DataFrame:
    """``ledger`` with the journal ``entries`` applied in order."""
    dtypes = {**dict(ledger.dtypes.items()), REMOVED: "boolean"}
    for entry in entries:
        changes = read_entry(entry, dtypes)
        removed = changes[REMOVED].to_numpy(bool)
        fresh = changes.loc[~removed, list(ledger.columns)]
        ledger = merged(ledger, fresh, set(changes.loc[removed, "key"]))
    return ledger


def journaled(lake: Lake, tenant_id: str, ledger: pd.DataFrame) -> pd.DataFrame:
    """The stored ledger with a cut-short push's journal applied, in the order it was kept."""
    return _applied(ledger, journal_entries(lake, tenant_id))


def journal_entries(lake: Lake, tenant_id: str) -> list[UPath]:
    folder = lake.gpb_ledger_journal(tenant_id)
    if not folder.exists():
        return []
    return sorted([*folder.glob("*.parquet"), *folder.glob(f"*{ACKS}")], key=lambda p: p.name)


class LedgerChanges:
    """A push's changes to ``ledger`` (as ``state.read_ledger`` gives it: a journal left by an
    earlier push already applied), part by part."""

    def __init__(self, lake: Lake, tenant_id: str, ledger: pd.DataFrame) -> None:
        self.lake, self.tenant_id, self.ledger = lake, tenant_id, ledger
        self._left = journal_entries(lake, tenant_id)  # by a push cut short: in ``ledger`` already
        self._kept: list[UPath] = []  # this push's entries, in order
        self._of_class: dict[str | None, list[UPath]] = {}  # which entries touch a class

    def concerning(
        self, rows_of: Callable[[pd.DataFrame], pd.DataFrame], classes: set[str]
    ) -> pd.DataFrame:
        """The rows ``rows_of`` picks from the ledger as the push has changed it so far, for
        a part of ``classes`` (and the rows of no class, the categories)."""
        stored = rows_of(self.ledger)
        touched = {e for c in [None, *classes] for e in self._of_class.get(c, [])}
        if not touched:
            return stored
        return rows_of(_applied(stored, [e for e in self._kept if e in touched]))

    def _next(self) -> int:
        names = [e.name.split(".")[0] for e in self._left + self._kept]
        return 1 + max((int(n) for n in names if n.isdigit()), default=-1)

    def acknowledgements(self) -> Acknowledgements | None:
        """Where the next part's acknowledged requests go as they come: on a local lake (an
        object store writes a file only when it is closed, so a killed process would leave
        nothing; there the part's journal entry is what a crash keeps)."""
        path = self.lake.gpb_ledger_journal(self.tenant_id) / f"{self._next():08d}{ACKS}"
        return Acknowledgements(path) if path.protocol in ("", "file", "local") else None

    def record(
        self, fresh: pd.DataFrame, removed: set[str], acks: Acknowledgements | None = None
    ) -> None:
        """A part's changes, journaled (its acknowledgements then go: the entry holds them)."""
        if not (fresh.empty and not removed):
            self._journal(fresh, removed)
        if acks is not None:
            acks.done()

    def _journal(self, fresh: pd.DataFrame, removed: set[str]) -> None:
        # The classes of the removed keys index the entry (the removals meet every class);
        # a part that only sent needs no look at the whole ledger.
        gone = (
            self.ledger[self.ledger["key"].isin(removed)][["key", "class"]]
            if removed
            else self.ledger.iloc[:0][["key", "class"]]
        )
        entry = pd.concat(
            [fresh.assign(**{REMOVED: False}), gone.assign(**{REMOVED: True})], ignore_index=True
        ).astype({**LEDGER_COLUMNS, REMOVED: bool})
        path = self.lake.gpb_ledger_journal(self.tenant_id) / f"{self._next():08d}.parquet"
        write_frame(entry, path)
        self._kept.append(path)
        for class_id in set(entry["class"].astype(object).where(entry["class"].notna(), None)):
            self._of_class.setdefault(class_id, []).append(path)

    def store(self) -> None:
        """The ledger whole, a slice at a time; then the journal goes (applied again to the
        stored ledger it would change nothing)."""
        if not (self._kept or self._left) and self.lake.gpb_ledger_file(self.tenant_id).exists():
            return  # most nights change a small part of a large ledger; some change nothing
        write_tables(self._tables(), self.lake.gpb_ledger_file(self.tenant_id))
        for entry in self._left + self._kept:
            entry.unlink()

    def _tables(self) -> Iterator[pa.Table]:
        """This push's entries, the last first, each without the keys a later one changed;
        then the ledger as read without any key the push changed."""
        schema = _table(empty_ledger()).schema
        changed: list[pa.Array] = []

        def unchanged(rows: pa.Table) -> pa.Table:
            if not changed:
                return rows
            keys = pa.concat_arrays(changed)
            return rows.filter(pc.invert(pc.is_in(rows["key"], value_set=keys)))

        for entry in reversed(self._kept):
            with entry.open("rb") as fh:
                rows = unchanged(pq.read_table(fh))
            changed.append(rows["key"].combine_chunks().cast(schema.field("key").type))
            yield rows.filter(pc.invert(rows[REMOVED])).drop_columns([REMOVED]).cast(schema)
        ledger = self.ledger
        # An empty ledger is a slice too: a tenant's first pass may send nothing (a summer
        # night, every term closed), and the stored ledger says so.
        for start in range(0, max(len(ledger), 1), SLICE_ROWS):
            yield unchanged(_table(ledger.iloc[start : start + SLICE_ROWS]).cast(schema))


def _table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
