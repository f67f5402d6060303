"""Atomic writes and columnar reads of stored files (where they live is the lake's business).

Local files are written to a temporary name beside the target, flushed to disk and renamed
over it (POSIX rename is atomic): a reader sees the old file or the new one, never half of
one. On object stores a single PUT is already all-or-nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

COMPRESSION = "zstd"


def publish(path: UPath, write: Callable[[BinaryIO], object]) -> None:
    """Write a file so that readers see the old one or the whole new one, never a part."""
    if path.protocol in ("", "file", "local"):
        target = Path(path.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A writer killed mid-write leaves only a hidden temporary file; the next writer of
        # the same target (one run per tenant-night at a time) clears it.
        for stale in target.parent.glob(f".{target.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write(fh)


def atomic_write_bytes(data: bytes, path: UPath) -> None:
    publish(path, lambda fh: fh.write(data))


def _compliant_lists(table: pa.Table) -> pa.Table:
    """List columns with their values named ``element``, as Parquet names them and as they
    read back: a table built in Arrow (``item``) and the same table read and written again
    then store the same schema, so a re-stored snapshot is the same bytes."""
    renamed = [
        pa.types.is_list(f.type) and f.type.value_field.name != "element" for f in table.schema
    ]
    if not any(renamed):
        return table  # (Arrow's type equality ignores the values' name: asked directly)
    fields = [
        pa.field(f.name, pa.list_(pa.field("element", f.type.value_type)), f.nullable)
        if rename
        else f
        for f, rename in zip(table.schema, renamed, strict=True)
    ]
    return table.cast(pa.schema(fields, table.schema.metadata))


def atomic_write_table(table: pa.Table, path: UPath) -> None:
    table = _compliant_lists(table)
    # A column held as a dictionary in memory (ten million Canvas enrollments as codes into
    # a district's sections and users) is stored as its values: without the Arrow schema in
    # the file, readers see plain strings, as on every night before. Parquet dictionary-encodes
    # such columns anyway, so nothing is lost on disk.
    coded = any(pa.types.is_dictionary(t) for t in table.schema.types)
    publish(
        path,
        lambda fh: pq.write_table(table, fh, compression=COMPRESSION, store_schema=not coded),
    )


def write_frame(frame: pd.DataFrame, path: UPath) -> None:
    # Without pandas' schema metadata: the Arrow schema is the contract, and pandas cannot
    # read back its own names of nested Arrow dtypes.
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    atomic_write_table(table, path)


def read_frame(
    path: UPath, columns: list[str] | None = None, dictionary: list[str] | None = None
) -> pd.DataFrame:
    """A stored frame; ``dictionary`` columns come as dictionaries (codes into their values)."""
    with path.open("rb") as fh:
        table = pq.read_table(fh, columns=columns, read_dictionary=dictionary)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def parquet_rows(path: UPath) -> int:
    with path.open("rb") as fh:
        return pq.ParquetFile(fh).metadata.num_rows
