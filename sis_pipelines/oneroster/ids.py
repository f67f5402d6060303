"""Lookups of a batch of references among a collection's sourcedIds.

A night is validated and mapped batch by batch, and Arrow's ``is_in`` and ``index_in`` build
their hash table over the value set at every call: over a million users, twenty times for a
district's enrollments. A batch names far fewer distinct ids than exist, so the table is
built over those instead, and the ids are probed against it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def is_in_ids(values: pa.Array | pa.ChunkedArray, ids: pa.Array) -> pa.Array | pa.ChunkedArray:
    """``pc.is_in(values, value_set=ids)``."""
    distinct = pc.unique(values)
    if len(distinct) * 4 > len(ids):
        return pc.is_in(values, value_set=ids)
    found = pc.filter(ids, pc.is_in(ids, value_set=distinct))
    return pc.is_in(values, value_set=found)


def index_in_ids(values: pa.Array, ids: pa.Array) -> pa.Array:
    """``pc.index_in(values, value_set=ids)`` for distinct ``values`` (a batch's dictionary)."""
    if len(values) * 4 > len(ids) or values.null_count:
        return pc.index_in(values, value_set=ids)
    where = pc.index_in(ids, value_set=values).to_numpy(zero_copy_only=False)  # id -> value
    found = ~np.isnan(where) if where.dtype.kind == "f" else np.ones(len(where), bool)
    places = np.full(len(values), -1, np.int64)
    # Reversed, so that of an id listed twice the first place is the one kept, as in Arrow.
    places[where[found].astype(np.int64)[::-1]] = np.flatnonzero(found)[::-1]
    return pa.array(places.astype(np.int32), mask=places < 0)
