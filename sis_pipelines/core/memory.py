"""Memory a finished step leaves behind, handed back before the next step grows.

The nightly job runs its steps in one process. A validated frame and the pandera accessor
cached on it point at each other, so a step's frames outlive it until Python's next full
collection, which may come several steps later: at a million students one night's 3 GB was
still held while the next night fetched. Arrow's allocator, too, keeps freed pages for reuse
until asked to give them back.
"""

from __future__ import annotations

import gc

import httpx
import pyarrow as pa

# How long Arrow's allocator keeps freed pages before it hands them back to the system.
RETURN_AFTER_MS = 100


def return_freed_memory() -> None:
    """Arrow allocates from jemalloc, which hands freed pages back within 0.1 s.

    Arrow's default (mimalloc) kept what a night's batches freed: at xl the mapping step's
    resident memory stood 0.3 GB above what it held, the CSV enrollments step 0.1 GB, for
    the same time (docs/performance.md). Builds without jemalloc keep their default.
    """
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        return
    pa.set_memory_pool(pool)
    pa.jemalloc_set_decay_ms(RETURN_AFTER_MS)


def release_memory() -> None:
    gc.collect()
    pa.default_memory_pool().release_unused()


def settle_loaded_code() -> None:
    """Leave what is loaded so far (modules, Dagster's definitions) out of later collections.

    A full collection walks every tracked object: with Dagster loaded that is some 200,000
    objects and 0.1 s, paid at every step boundary. What exists when the definitions load
    lives as long as the process, so it is frozen once (``gc.freeze``): step boundaries then
    walk only what steps made. Frozen objects are still freed when nothing refers to them.
    """
    gc.collect()
    gc.freeze()


def release_response(response: httpx.Response) -> None:
    """Let a read response, and its body, go as soon as nothing uses it.

    httpx 0.28 links a response and its stream both ways (encode/httpx#3733), so each body
    lived on until a full garbage collection: at 100k students a OneRoster fetch held 225 MB
    of dead 50K-record pages, most of its peak. Call once the body has been read.
    """
    response.stream = httpx.ByteStream(b"")
