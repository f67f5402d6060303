"""A night's snapshot of a collection, validated batch by batch as its pages arrive and
appended to the night's Parquet file: memory holds a batch, not the collection.

What needs the whole collection works on its sourcedIds alone, after the last page:
- a SIS that does not sort by sourcedId may serve a record twice while the collection changes
  under the pull: the last copy wins (the most recently served), the earlier ones are dropped;
- otherwise a sourcedId served twice is a duplicate, and every copy is quarantined.
Ids that rise strictly from the first batch to the last prove that neither happened (a SIS
sorting by sourcedId, and most others, serve them so). Else the ids' 64-bit hashes, kept
batch by batch (8 bytes a record), tell the few records whose id may repeat; only those are
read back and compared (DuckDB streams the file's id column past them), and the file is
written again without the rows that go (rare: a SIS changing under the pull, a CSV file with
a duplicated row).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.duck import bounded
from ..core.storage import COMPRESSION, WriteBehind, stored_schema
from .collections import Collection
from .ids import IdSet, id_hashes
from .normalise import Rejects, arrow_schema, strictly_ascending
from .repair import Repairs
from .schemas import REFERENCES
from .shown import shown
from .validate import MAX_REASONS_PER_RECORD, check, kept_repairs, quarantine_frame

# Records validated together: enough that pandera's fixed cost per call vanishes, few enough
# that a batch is tens of megabytes (users are wider than enrollments: bytes decide first).
BATCH_ROWS = 1 << 18
BATCH_BYTES = 64 << 20
MEMORY_LIMIT = "256MB"
# A collection checked whole (orgs, academic sessions: parents within the collection) is
# held whole: a district has thousands; a runaway file is refused beyond this.
MAX_WHOLE_ROWS = 1_000_000
# Records sharing ids that are always settled (read back and compared), whatever the share.
MIN_REPEATED = 10_000


@dataclass
class Written:
    """What a writer stored: the kept records' count, the quarantine and the repairs."""

    rows: int
    quarantine: pd.DataFrame  # sourcedId, reason, record
    repairs: pd.DataFrame  # of kept records
    superseded: int  # earlier copies of records served again, dropped


def append(writer: pq.ParquetWriter, table: pa.Table) -> None:
    """A batch's kept records, as a row group of the night's file (on the writer's thread)."""
    writer.write_table(table)


def settle(writes: WriteBehind) -> None:
    """Waits for a batch's write to end (its error raised here): what writing costs the night
    beyond the validation and the fetching it overlapped."""
    writes.wait()


class SnapshotWriter:
    """Validates a collection's tables as they come and appends the kept records to ``path``
    (a staged file: its publisher makes it the night's snapshot, whole, once finished)."""

    def __init__(
        self,
        collection: Collection,
        references: Mapping[str, pa.Array],
        quarantined: Mapping[str, pd.DataFrame] | None,
        path: Path,
        max_repeated_share: float = 1.0,
    ) -> None:
        self.collection = collection
        self.max_repeated_share = max_repeated_share
        # Looked up batch after batch: hashed and sorted once (see ``ids.py``).
        self.references = {name: IdSet(ids) for name, ids in references.items()}
        self.quarantined = quarantined
        self.path = path
        self.schema = stored_schema(arrow_schema(collection))
        # A collection referring to itself (org and session parents) is checked whole.
        self._whole = any(s == t == collection.name for (s, _), t in REFERENCES.items())
        self._start()

    def _start(self) -> None:
        self._writer = pq.ParquetWriter(self.path, self.schema, compression=COMPRESSION)
        # One batch is written while the next is fetched and validated.
        self._writes = WriteBehind(f"snapshot-{self.collection.name}")
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._rejects = Rejects()  # normalisation's
        self._repairs = Repairs()  # validation's
        self._failing: list[pd.DataFrame] = []
        self._ordinals: list[np.ndarray] = []  # the failing records' places in the collection
        self._id_hashes: list[np.ndarray] = []  # every sourcedId's, to tell a repeat cheaply
        self._seen = 0
        self._kept = 0
        self._ascending = True
        self._last: str | None = None

    def add(self, table: pa.Table, rejects: Rejects | None = None) -> None:
        if rejects is not None:
            self._rejects.extend(rejects)
        if table.num_rows:
            self._pending.append(table)
            self._pending_rows += table.num_rows
            self._pending_bytes += table.nbytes
        full = self._pending_rows >= BATCH_ROWS or self._pending_bytes >= BATCH_BYTES
        if full and not self._whole:
            self._flush()
        elif self._pending_rows > MAX_WHOLE_ROWS:
            raise ValueError(
                f"{self.collection.name}: more than {MAX_WHOLE_ROWS:,} records, checked whole "
                "(their parents refer to each other); no district has so many: refused, "
                "nothing stored for the night"
            )

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        self._note_order(table["sourcedId"])
        self._id_hashes.append(id_hashes(table["sourcedId"].combine_chunks()))
        checked = check(
            self.collection, table, self.references, self._repairs, self.quarantined, unique=False
        )
        self._failing.append(checked.failing)
        self._ordinals.append(self._seen + checked.positions)
        self._seen += table.num_rows
        kept = pa.Table.from_pandas(checked.kept, preserve_index=False)
        kept = kept.replace_schema_metadata(None).cast(self.schema)
        settle(self._writes)
        self._writes.submit(append, self._writer, kept)
        self._kept += len(checked.kept)

    def _note_order(self, ids: pa.ChunkedArray) -> None:
        if not self._ascending:
            return
        ids = pc.drop_null(ids)
        if not len(ids):
            return
        first, last = ids[0].as_py(), ids[-1].as_py()
        seam = self._last is None or first > self._last
        self._ascending = seam and strictly_ascending(ids)
        self._last = last

    def finish(self, keep_last: bool) -> Written:
        """The last batch written and the file closed; ``keep_last``: whether repeated
        sourcedIds are copies served again (the last wins) rather than duplicates."""
        self._flush()
        self._close()
        # Let the referenced ids go before repeated ones are looked for (a district's users
        # and classes, hashed, are 150 MB at a million students).
        self.references = {}
        failing = quarantine_frame(self._failing)
        superseded = 0
        if not self._ascending:
            ordinals = np.concatenate(self._ordinals)
            failing, superseded = self._repeated(failing, ordinals, keep_last)
        quarantine = quarantine_frame([self._rejects.to_table().to_pandas(), failing])
        repairs = Repairs([*self._rejects.repairs.parts, *self._repairs.parts])
        return Written(self._kept, quarantine, kept_repairs(repairs, quarantine), superseded)

    def _candidates(self) -> np.ndarray:
        """The places in the collection of the records whose sourcedId's hash repeats: those
        that may share their id with another (none, unless an id repeats or two hashes
        collide). Ten million hashes sort in under a second, in 80 MB."""
        hashes = np.concatenate(self._id_hashes) if self._id_hashes else np.array([], np.uint64)
        self._id_hashes = []
        ordered = np.sort(hashes)
        twice = ordered[1:][ordered[1:] == ordered[:-1]]
        if not len(twice):
            return np.array([], np.int64)
        candidates = np.flatnonzero(np.isin(hashes, np.unique(twice)))
        self._refuse_mass_repeats(candidates, ordered, len(hashes))
        return candidates

    def _refuse_mass_repeats(self, candidates: np.ndarray, ordered: np.ndarray, seen: int) -> None:
        """Records sharing ids are read back to be settled, and all copies of a duplicate are
        quarantined: more than the tenant lets be quarantined (or a broken export's join
        repeating each id a thousand times) is refused here, in one line, before any is read
        back: the settling's memory stays bounded whatever the file holds."""
        limit = max(MIN_REPEATED, int(self.max_repeated_share * seen))
        if len(candidates) <= limit:
            return
        ends = np.flatnonzero(np.diff(ordered))  # the last place of each run of one hash
        most = int(np.diff(np.concatenate([[-1], ends, [len(ordered) - 1]])).max())
        raise ValueError(
            f"{self.collection.name}: {len(candidates):,} of {seen:,} records share their "
            f"sourcedId with another (one id up to {most:,} times), above the "
            f"{self.max_repeated_share:.0%} that may be quarantined (validation."
            "max_quarantined_share): a broken export; nothing stored for the night"
        )

    def _close(self) -> None:
        try:
            settle(self._writes)
        finally:
            self._writes.close()
            self._writer.close()

    def abandon(self) -> None:
        # The file is being given up: an error of its last write goes with it.
        with contextlib.suppress(Exception):
            self._close()

    def restart(self) -> None:
        """Everything added so far forgotten: the collection is read again from the start."""
        self.abandon()
        self._start()

    def _repeated(
        self, failing: pd.DataFrame, ordinals: np.ndarray, keep_last: bool
    ) -> tuple[pd.DataFrame, int]:
        """Resolves sourcedIds seen more than once: returns the quarantine's validation part
        and how many copies were superseded; the file is written again if rows leave it."""
        repeated = self._sharing_ids(self._candidates(), failing, ordinals)
        if not len(repeated):
            return failing, 0
        failed = repeated["failed"].to_numpy(bool)
        # A kept record's place in the file -> its place in the collection: the failing
        # records before it are not in the file.
        gaps = np.sort(ordinals) - np.arange(len(ordinals))
        places = repeated["r"].to_numpy(np.int64)
        places = np.where(failed, places, places + np.searchsorted(gaps, places, side="right"))
        repeated = repeated.assign(place=places)
        if keep_last:
            last = repeated.groupby("sourcedId")["place"].transform("max")
            going = repeated[repeated["place"] < last]
            leave_file = going.loc[~going["failed"], "r"].to_numpy(np.int64)
            superseded = going["place"].to_numpy(np.int64)[going["failed"].to_numpy(bool)]
            keep = ~np.isin(ordinals, superseded)
            self._rewrite(leave_file)
            return failing[keep].reset_index(drop=True), len(going)
        # Duplicates: every copy quarantined, the kept ones taken out of the file.
        twice = set(repeated["sourcedId"])
        reasons = [
            _with_duplicate(reason, sid) if sid in twice else reason
            for sid, reason in zip(failing["sourcedId"], failing["reason"], strict=True)
        ]
        failing = failing.assign(reason=pd.array(reasons, dtype=failing["reason"].dtype))
        moved = self._rewrite(repeated.loc[~repeated["failed"], "r"].to_numpy(np.int64))
        duplicates = pd.DataFrame(
            {
                "sourcedId": [r["sourcedId"] for r in moved],
                "reason": [_with_duplicate("", r["sourcedId"]) for r in moved],
                "record": [orjson.dumps(r, default=str).decode() for r in moved],
            }
        )
        return quarantine_frame([failing, duplicates]), 0

    def _sharing_ids(
        self, candidates: np.ndarray, failing: pd.DataFrame, ordinals: np.ndarray
    ) -> pd.DataFrame:
        """The records (sourcedId, r, failed) whose sourcedId another record has too: ``r`` is
        a kept record's row in the file, a failing one's place in the collection. Only the
        ``candidates`` are read back (DuckDB streams the file's id column past them)."""
        failed = np.isin(candidates, ordinals)
        at_failing = pd.Series(np.arange(len(ordinals)), index=ordinals)
        failing_ids = pd.DataFrame(
            {
                "sourcedId": failing["sourcedId"]
                .iloc[at_failing.loc[candidates[failed]].to_numpy()]
                .astype(object)
                .to_numpy(),
                "r": candidates[failed],
                "failed": True,
            }
        )
        # A kept record's row in the file: its place, less the failing records before it.
        kept_places = candidates[~failed]
        rows = kept_places - np.searchsorted(np.sort(ordinals), kept_places)
        with bounded(MEMORY_LIMIT, "snapshot") as con:
            con.register("wanted_rows", pa.table({"r": pa.array(rows, pa.int64())}))
            kept_ids = con.execute(
                """
                SELECT sourcedId, file_row_number AS r, false AS failed
                FROM read_parquet(?, file_row_number = true)
                WHERE file_row_number IN (SELECT r FROM wanted_rows)
                """,
                [str(self.path)],
            ).df()
        both = pd.concat(
            [kept_ids.astype({"sourcedId": object}), failing_ids], ignore_index=True
        ).dropna(subset=["sourcedId"])
        both = both.astype({"r": np.int64, "failed": bool})
        return both[both["sourcedId"].duplicated(keep=False)].reset_index(drop=True)

    def _rewrite(self, leaving: np.ndarray) -> list[dict]:
        """Writes the file again without the rows at ``leaving``; returns them as records."""
        if not len(leaving):
            return []
        leaving = np.sort(leaving)
        out = self.path.with_name(f"{self.path.name}.rewrite.tmp")
        taken: list[dict] = []
        try:
            source = pq.ParquetFile(self.path)
            with pq.ParquetWriter(out, self.schema, compression=COMPRESSION) as writer:
                start = 0
                for group in range(source.num_row_groups):
                    table = source.read_row_group(group)
                    end = start + table.num_rows
                    here = leaving[(leaving >= start) & (leaving < end)] - start
                    if len(here):
                        taken += table.take(pa.array(here)).to_pylist()
                        keep = np.ones(table.num_rows, dtype=bool)
                        keep[here] = False
                        table = table.filter(pa.array(keep))
                    writer.write_table(table)
                    start = end
            os.replace(out, self.path)
        finally:
            out.unlink(missing_ok=True)
        self._kept -= len(leaving)
        return taken


def _with_duplicate(reason: str, sourced_id: str) -> str:
    duplicate = f"sourcedId: duplicate {shown(sourced_id)}"
    if not reason:
        return duplicate
    if reason.count("; ") + 1 >= MAX_REASONS_PER_RECORD:
        return reason
    return f"{reason}; {duplicate}"
