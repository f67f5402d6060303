"""Lookups of batches of references among a collection's sourcedIds.

A night is validated and mapped batch by batch, and Arrow's ``is_in`` and ``index_in`` build
a hash table over their value set at every call: over a million users, twenty times for a
district's enrollments. An ``IdSet`` is built once: the ids' 64-bit hashes (DuckDB's),
sorted, with where each run of hashes sharing their top bits starts (about one id a run). A
batch's references are hashed, found in their run by a step or two (no sort of the batch,
no binary search) and confirmed by comparing the ids themselves, so every answer is exact;
ids whose hashes collide (or repeat) are answered by Arrow instead.
"""

from __future__ import annotations

import threading

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_local = threading.local()

# Below this, Arrow's own hash table costs less than hashing and sorting.
SMALL = 50_000


def id_hashes(values: pa.Array) -> np.ndarray:
    """Each id's 64-bit hash (DuckDB's), in a thread's own connection."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect()
    con.register("ids_to_hash", pa.table({"v": values}))
    try:
        return con.execute("SELECT hash(v) AS h FROM ids_to_hash").fetchnumpy()["h"]
    finally:
        con.unregister("ids_to_hash")


class IdSet:
    """A collection's sourcedIds, asked about batch after batch."""

    def __init__(self, ids: pa.Array | pa.ChunkedArray) -> None:
        self.ids = (ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids).cast(
            pa.string()
        )
        self._exact = len(self.ids) < max(SMALL, 1) or bool(self.ids.null_count)
        if self._exact:
            return
        hashes = id_hashes(self.ids)
        self._order = np.argsort(hashes)
        self._hashes = hashes[self._order]
        self._sorted = self.ids.take(pa.array(self._order))
        self._exact = bool((self._hashes[1:] == self._hashes[:-1]).any())
        bits = max(1, int(np.ceil(np.log2(len(hashes)))))
        self._shift = np.uint64(64 - bits)
        firsts = np.arange(1 << bits, dtype=np.uint64) << self._shift
        self._starts = np.append(np.searchsorted(self._hashes, firsts), len(hashes))

    def __len__(self) -> int:
        return len(self.ids)

    def _found(self, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """For each value: whether it is an id, and where among the sorted ids."""
        wanted = id_hashes(values)
        run = (wanted >> self._shift).astype(np.intp)
        at, end = self._starts[run], self._starts[run + 1]
        hashed = np.zeros(len(wanted), dtype=bool)
        # Each step looks once more in the runs not yet settled: few runs hold three ids.
        open_ = np.flatnonzero(at < end)
        while len(open_):
            hit = self._hashes[at[open_]] == wanted[open_]
            hashed[open_[hit]] = True
            open_ = open_[~hit]
            at[open_] += 1
            open_ = open_[at[open_] < end[open_]]
        at = np.minimum(at, len(self._hashes) - 1)
        same = pc.equal(self._sorted.take(pa.array(at)), values)
        return hashed & same.fill_null(False).to_numpy(zero_copy_only=False), at

    def _distinct(self, values: pa.Array) -> tuple[pa.Array, pa.Array | None]:
        """The values to look up, and the rows' codes into them when coding pays: when most
        values repeat the one before (enrollments served student by student name a tenth as
        many users as rows). A hash table over a batch's 300k distinct classes costs more
        than looking every row up."""
        if len(values) < 2:
            return values, None
        repeats = pc.sum(pc.equal(values.slice(1), values.slice(0, len(values) - 1))).as_py()
        if 2 * (repeats or 0) < len(values):
            return values, None
        coded = pc.dictionary_encode(values)
        return coded.dictionary, coded.indices

    def contains(self, values: pa.Array | pa.ChunkedArray) -> pa.Array:
        """``pc.is_in(values, value_set=ids)``."""
        values = _array(values)
        if self._exact or not len(values):
            return pc.is_in(values, value_set=self.ids)
        distinct, codes = self._distinct(values)
        found = pa.array(self._found(distinct)[0])
        return found if codes is None else pc.take(found, codes).fill_null(False)

    def index(self, values: pa.Array | pa.ChunkedArray) -> pa.Array:
        """``pc.index_in(values, value_set=ids)``: each value's place among the ids."""
        values = _array(values)
        if self._exact or not len(values):
            return pc.index_in(values, value_set=self.ids)
        distinct, codes = self._distinct(values)
        found, at = self._found(distinct)
        places = pa.array(self._order[at].astype(np.int32), mask=~found)
        return places if codes is None else pc.take(places, codes)


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def is_in_ids(values: pa.Array | pa.ChunkedArray, ids: pa.Array | IdSet) -> pa.Array:
    """Which ``values`` are among ``ids`` (an ``IdSet`` when asked about batch after batch)."""
    if isinstance(ids, IdSet):
        return ids.contains(values)
    return pc.is_in(values, value_set=ids)
