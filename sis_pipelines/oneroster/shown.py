"""How a district's value appears in a reason or a warning: quoted, and at most a bounded
prefix of it. A 200 MB name copied whole into a reason became a 200 MB log event (and a
process out of memory); the value itself stays where it belongs, in the record kept."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

MAX_SHOWN = 80  # characters of a value a reason quotes


def shown(value: object) -> str:
    """``repr`` of the value, cut to ``MAX_SHOWN`` characters with the length it had."""
    if isinstance(value, str) and len(value) > MAX_SHOWN:
        return f"{value[:MAX_SHOWN]!r}… ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= MAX_SHOWN + 2 else f"{text[:MAX_SHOWN]}… ({len(text):,} characters)"


def shown_column(values: pa.Array) -> pa.Array:
    """Each value quoted ``'like this'``, cut as :func:`shown` cuts it (columnar)."""
    text = values.cast(pa.string())
    cut = pc.utf8_slice_codeunits(text, 0, MAX_SHOWN)
    long = pc.greater(pc.utf8_length(text), MAX_SHOWN)
    lengths = pc.cast(pc.utf8_length(text), pa.string())
    tail = pc.if_else(long, pc.binary_join_element_wise("… (", lengths, " characters)", ""), "")
    return pc.binary_join_element_wise("'", cut, "'", tail, "")
