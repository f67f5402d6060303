"""DuckDB for work on whole collections (the delta's join, the sourcedIds of a snapshot):
a connection whose memory is bounded, spilling to a temporary folder beyond it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


@contextmanager
def bounded(memory_limit: str, purpose: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection that spills beyond ``memory_limit`` (the folder goes with it)."""
    spill = tempfile.mkdtemp(prefix=f"sis-{purpose}-")
    con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": spill})
    try:
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
