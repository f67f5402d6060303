"""Row fingerprints of a Canvas file: two 64-bit hashes a row, stored beside its columns.

The delta compares two nights of ten million enrollments. Hashing their text is most of
the work, and each night's file would be hashed twice (tonight, and tomorrow as the night
before). The mapping holds the rows as codes into a few hundred thousand distinct values,
so it hashes each distinct value once and gives every row its fingerprints as it writes it:
the delta then reads two integer columns instead of hashing seven text ones.

A row's key hash is the XOR of a term per cell of its key, its row hash the XOR of a term
per cell of the key and the values: DuckDB's ``hash`` of the cell as text (NULL too), mixed
with a constant of the cell's place and hashed again (``cell_hash_sql``), so the delta computes the
very same numbers in SQL for a file stored without them (an earlier night, another writer,
rows in memory). The file's metadata names the columns and the scheme (DuckDB's version: its
``hash`` may change): fingerprints are used only when both nights' agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

KEY_HASH = "_key_hash"
ROW_HASH = "_row_hash"
COLUMNS = (KEY_HASH, ROW_HASH)
ROW_SALT = 1000
METADATA = b"sis_pipelines.fingerprints"
EVERY_BIT = (1 << 64) - 1
# Every bit kept; the tests narrow it to make distinct keys share a key hash.
KEY_MASK = EVERY_BIT


def scheme() -> str:
    return f"duckdb-{duckdb.__version__}-xor-salted-v2"


@dataclass(frozen=True)
class Layout:
    """Which columns a file's fingerprints cover, and how they were made."""

    key: tuple[str, ...]
    values: tuple[str, ...]
    scheme: str

    @classmethod
    def of(cls, key: Sequence[str], values: Sequence[str]) -> Layout:
        return cls(tuple(key), tuple(values), scheme())

    def to_metadata(self) -> dict[bytes, bytes]:
        text = {"key": list(self.key), "values": list(self.values), "scheme": self.scheme}
        return {METADATA: json.dumps(text).encode()}

    @classmethod
    def from_metadata(cls, metadata: dict[bytes, bytes] | None) -> Layout | None:
        raw = (metadata or {}).get(METADATA)
        if raw is None:
            return None
        text = json.loads(raw)
        return cls(tuple(text["key"]), tuple(text["values"]), text["scheme"])


def _salt(place: int) -> int:
    """A 64-bit constant per place (Weyl sequence of the golden ratio)."""
    return ((place + 1) * 0x9E3779B97F4A7C15) % (1 << 64)


def cell_hash_sql(cell: str, place: int) -> str:
    """One cell's term. The salt is mixed in by hashing again: DuckDB combines the hashes
    of ``hash(cell, salt)`` linearly, so two columns holding the same text would cancel
    out of an XOR (a change from NULL to '' in both dates went unseen)."""
    return f"hash(xor(hash({cell}), {_salt(place)}::UBIGINT))"


def _xor(terms: list[str]) -> str:
    expr = terms[0]
    for term in terms[1:]:
        expr = f"xor({expr}, {term})"
    return expr


def key_hash_sql(key: Sequence[str]) -> str:
    """The key hash of a relation's text columns, in DuckDB's SQL."""
    expr = _xor([cell_hash_sql(f'"{c}"', i) for i, c in enumerate(key)])
    return expr if KEY_MASK == EVERY_BIT else f"({expr} & {KEY_MASK}::UBIGINT)"


def row_hash_sql(key: Sequence[str], values: Sequence[str]) -> str:
    return _xor([cell_hash_sql(f'"{c}"', ROW_SALT + j) for j, c in enumerate([*key, *values])])


class Fingerprinter:
    """Adds the fingerprint columns to tables of one file, slice after slice.

    A dictionary column is hashed once per distinct value and its rows take their value's
    hash; the dictionaries a file's slices share (a district's sections and users) are
    hashed once for the whole file."""

    def __init__(self, key: Sequence[str], values: Sequence[str]) -> None:
        self.layout = Layout.of(key, values)
        self._con = duckdb.connect()
        self._known: dict[tuple[int, ...], tuple[pa.Array, dict[int, np.ndarray]]] = {}

    def close(self) -> None:
        self._con.close()
        self._known.clear()

    def _hashes(self, values: pa.Array, salt: int) -> np.ndarray:
        """Each value's term (NULL's too), as DuckDB computes it in SQL."""
        self._con.register("cells", pa.table({"v": values}))
        try:
            # As text the way the delta's SQL makes it (DuckDB's cast, not Arrow's).
            term = cell_hash_sql("cast(v as varchar)", salt)
            return self._con.sql(f"select {term} as h from cells").fetchnumpy()["h"]
        finally:
            self._con.unregister("cells")

    def _of_values(self, dictionary: pa.Array, salt: int) -> np.ndarray:
        """Hashes of a dictionary's values and, last, of NULL (where a row has no code)."""
        ident = tuple(b.address if b is not None else 0 for b in dictionary.buffers())
        ident += (dictionary.offset, len(dictionary))
        held, by_salt = self._known.setdefault(ident, (dictionary, {}))
        if salt not in by_salt:
            with_null = pa.concat_arrays([held, pa.nulls(1, held.type)])
            by_salt[salt] = self._hashes(with_null, salt)
        return by_salt[salt]

    def _column(self, column: pa.ChunkedArray | pa.Array, salt: int) -> np.ndarray:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if not pa.types.is_dictionary(column.type):
            return self._hashes(column, salt)
        table = self._of_values(column.dictionary, salt)
        codes = column.indices.fill_null(len(table) - 1)
        return table[codes.to_numpy(zero_copy_only=False)]

    def _combined(self, table: pa.Table, columns: Sequence[str], salt: int) -> np.ndarray:
        out = np.zeros(table.num_rows, dtype=np.uint64)
        for i, name in enumerate(columns):
            np.bitwise_xor(out, self._column(table[name], salt + i), out=out)
        return out

    def add(self, table: pa.Table) -> pa.Table:
        layout = self.layout
        key = self._combined(table, layout.key, 0)
        if KEY_MASK != EVERY_BIT:
            key &= np.uint64(KEY_MASK)
        row = self._combined(table, [*layout.key, *layout.values], ROW_SALT)
        out = table.append_column(KEY_HASH, pa.array(key)).append_column(ROW_HASH, pa.array(row))
        metadata = {**(table.schema.metadata or {}), **layout.to_metadata()}
        return out.replace_schema_metadata(metadata)


def fingerprinted(
    tables: Iterable[pa.Table], key: Sequence[str], values: Sequence[str]
) -> Iterator[pa.Table]:
    """``tables`` (the slices of one file) each with its rows' fingerprints."""
    fingerprints = Fingerprinter(key, values)
    try:
        for table in tables:
            yield fingerprints.add(table)
    finally:
        fingerprints.close()
