"""Memory a finished step leaves behind, handed back before the next step grows.

The nightly job runs its steps in one process. Pandas frames sit in reference cycles (their
blocks and flags point back at them), so a step's frames outlive it until Python's next full
collection, which may come several steps later: at a million students one night's Canvas
mapping (3 GB) was still held while the next night fetched. Arrow's allocator, too, keeps
freed pages for reuse until asked to give them back.
"""

from __future__ import annotations

import gc

import pyarrow as pa


def release_memory() -> None:
    gc.collect()
    pa.default_memory_pool().release_unused()
