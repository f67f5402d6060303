"""Drift-safe pagination of a OneRoster collection: every record that existed during the
whole pull, once, whatever the provider does with page sizes, counts, sort and changes."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .collections import Collection
from .errors import OneRosterError
from .ids import id_hashes
from .normalise import strictly_ascending

if TYPE_CHECKING:
    from .client import OneRosterClient

log = logging.getLogger(__name__)


@dataclass
class Page:
    # Decoded records, or (the common case) the page already in canonical columns.
    records: list[dict] | pa.Table
    total: int | None  # X-Total-Count (or a vendor's x-count), when sent
    has_next: bool | None  # from a Link header, when sent


@dataclass
class FetchStats:
    endpoint: str
    requests: int = 0
    pages: int = 0
    retries: int = 0
    records_received: int = 0
    duplicates: int = 0
    page_size_requested: int = 0
    page_size_served: int | None = None
    sorted_by_server: bool = True
    totals_reported: list[int] = field(default_factory=list)
    drift_rewinds: int = 0

    def absorb(self, part: FetchStats) -> None:
        """One school's walk added to the collection's (read school by school)."""
        for name in ("requests", "pages", "retries", "records_received", "duplicates"):
            setattr(self, name, getattr(self, name) + getattr(part, name))
        self.drift_rewinds += part.drift_rewinds
        self.page_size_requested = part.page_size_requested or self.page_size_requested
        self.page_size_served = part.page_size_served or self.page_size_served
        self.sorted_by_server &= part.sorted_by_server

    @property
    def reconciled(self) -> bool | None:
        """Whether the provider's own count matches what we kept (None: it sent no count)."""
        if not self.totals_reported:
            return None
        return self.totals_reported[-1] == self.records_received - self.duplicates


def total_count(headers: httpx.Headers) -> int | None:
    for name in ("x-total-count", "x-count"):
        value = headers.get(name)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def has_next(headers: httpx.Headers) -> bool | None:
    link = headers.get("link")
    if link is None:
        return None
    return 'rel="next"' in link or "rel=next" in link


def keep_last_by_id(table: pa.Table) -> tuple[pa.Table, int]:
    """De-duplicate on sourcedId, the last copy wins (it is the most recently served)."""
    ids = table["sourcedId"]
    idx = pa.array(range(table.num_rows), pa.int64())
    last = pa.table({"id": ids, "i": idx}).group_by("id").aggregate([("i", "max")])["i_max"]
    keep = pc.sort_indices(last)
    out = table.take(pc.take(last, keep))
    return out, table.num_rows - out.num_rows


class PageIds:
    """The sourcedIds of one page, as paging needs them: a page already in columns is
    answered by Arrow kernels (ten million enrollments are ten million Python strings
    otherwise), a page of records one by one."""

    def __init__(self, records: list[dict] | pa.Table) -> None:
        self.records = records
        if isinstance(records, pa.Table):
            self.column: pa.ChunkedArray | None = records["sourcedId"]
            self.items: list[Any] = []
        else:
            self.column = None
            self.items = [r.get("sourcedId") if isinstance(r, dict) else None for r in records]

    @property
    def first(self) -> Any:
        if self.column is not None:
            return self.column[0].as_py() if len(self.column) else None
        return self.items[0] if self.items else None

    def ascending(self) -> bool:
        """Whether the ids present are strictly ascending."""
        if self.column is not None:
            return strictly_ascending(pc.drop_null(self.column))
        known = [i for i in self.items if i is not None]
        try:
            return all(a < b for a, b in itertools.pairwise(known))
        except TypeError:
            return False

    def contains(self, anchor: Any) -> bool:
        if self.column is not None:
            return bool(pc.any(pc.equal(self.column, anchor)).as_py())
        return anchor in self.items

    def after(self, anchor: Any) -> list[dict] | pa.Table:
        """The records past the anchor (and any without an id, for normalisation to reject)."""
        if self.column is not None:
            keep = pc.fill_null(pc.greater(self.column, anchor), True)
            return self.records.filter(keep)  # type: ignore[union-attr]
        return [
            r
            for r, i in zip(self.records, self.items, strict=True)  # type: ignore[arg-type]
            if i is None or i > anchor
        ]

    def fingerprint(self) -> tuple[int, int]:
        """The page's ids, in order, as two numbers: equal for the same page served again."""
        if self.column is not None:
            hashes = id_hashes(pc.fill_null(self.column, "").combine_chunks())
            weights = np.arange(1, 2 * len(hashes), 2, dtype=np.uint64)  # order counts
            return len(hashes), int(np.bitwise_xor.reduce(hashes * weights)) if len(hashes) else 0
        return len(self.items), hash(tuple(map(str, self.items)))

    def greatest(self, anchor: Any) -> Any:
        if self.column is not None:
            top = pc.max(self.column).as_py()
            known = [] if top is None else [top]
        else:
            known = [i for i in self.items if i is not None]
        if anchor is not None:
            known.append(anchor)
        return max(known) if known else None


# Requests without a new record before paging gives up (drift rewinds double, so a few dozen).
MAX_IDLE_REQUESTS = 100
# Ten times the largest district's largest collection: a SIS serving more is not ending.
MAX_RECORDS = 100_000_000


class PagingError(OneRosterError):
    """A SIS whose pages cannot be walked to their end: they repeat, never end or stop short.
    Trying again gets the same, so the step fails at once (and writes nothing)."""


def paginate(
    client: OneRosterClient, collection: Collection, stats: FetchStats, columnar: bool = True
) -> Iterator[list[dict] | pa.Table]:
    """The records of a collection page by page (see :func:`_pages`), refusing a walk that
    cannot be trusted: a page served again further on (a SIS ignoring ``offset`` would be
    paged forever), more records than any district has, or a count that the pages stop short
    of (a SIS ignoring ``offset`` but sorting would end after its first page)."""
    served: int | None = None
    for records in _pages(client, collection, stats, columnar):
        served = max(served or 0, len(records))
        if stats.records_received > MAX_RECORDS:
            raise PagingError(
                client.tenant,
                stats.endpoint,
                f"more than {MAX_RECORDS:,} records served and the pages do not end; refused "
                "rather than fetched forever",
            )
        yield records
    if stats.totals_reported:
        # A count may fall by the records deleted under the pull; never by more than a page.
        short = stats.totals_reported[-1] - stats.records_received
        if short > max(served or 0, stats.page_size_served or client.page_size):
            raise PagingError(
                client.tenant,
                stats.endpoint,
                f"the SIS reports {stats.totals_reported[-1]:,} records but its pages ended after "
                f"{stats.records_received:,}; refused rather than stored short",
            )


def _pages(
    client: OneRosterClient, collection: Collection, stats: FetchStats, columnar: bool = True
) -> Iterator[list[dict] | pa.Table]:
    """Yield the records of a collection page by page, without losing or repeating rows.

    Real providers send no count and no Link header, clamp the page size silently and
    change while we read. So:
    - the page size the server really serves is learnt from the first page; a short first
      page with no count to settle it is followed by one probe, and only a page shorter
      than the served size ends the pull;
    - with the server sorting by sourcedId, each request overlaps the previous page by one
      record (the anchor). If the window starts past the anchor, records before it were
      deleted under us and we step back until the anchor is inside again: no record that
      existed during the whole pull is skipped, and none at or before the anchor is taken
      twice;
    - without server sorting, pages are taken by plain offset and de-duplicated afterwards.
    """
    requested = client.page_size
    stats.page_size_requested = requested
    anchored = client.sort
    served: int | None = None  # records per page the server really gives
    anchor: Any = None  # the greatest sourcedId taken so far (anchored mode)
    consumed = 0  # records of the collection before the next unseen one
    rewind = 0
    seen: dict[tuple[int, int], int] = {}  # each full page's fingerprint -> its offset
    idle = 0  # requests in a row that brought no new record
    while True:
        idle += 1
        if idle > MAX_IDLE_REQUESTS:
            raise PagingError(
                client.tenant,
                stats.endpoint,
                f"{MAX_IDLE_REQUESTS} requests in a row brought no new record; the pages do not "
                "move on, refused rather than asked forever",
            )
        offset = max(0, consumed - (1 if anchored and anchor is not None else 0) - rewind)
        page = client.get_page(collection, offset, requested, anchored, columnar)
        stats.pages += 1
        records, n = page.records, len(page.records)
        if page.total is not None:
            stats.totals_reported.append(page.total)
        ids = PageIds(records)
        if n:
            # The same page further on: the SIS ignores offset. (A rewind asks for an earlier
            # offset, and may well get a page it saw: that is not a repeat.)
            fingerprint = ids.fingerprint()
            earlier = seen.get(fingerprint)
            if earlier is not None and earlier < offset:
                raise PagingError(
                    client.tenant,
                    stats.endpoint,
                    f"the page at offset {offset:,} repeats the page at offset {earlier:,}: the "
                    "SIS ignores offset, so paging would never end (or end short); refused",
                )
            seen.setdefault(fingerprint, offset)
        if anchored and n > 1 and not ids.ascending():
            log.info(
                "tenant %r: %s ignores sort=sourcedId; paging by offset and de-duplicating",
                client.tenant,
                stats.endpoint,
            )
            anchored = False
            stats.sorted_by_server = False
        if (
            anchored
            and anchor is not None
            and n
            and ids.first is not None
            and ids.first < anchor
            and not ids.contains(anchor)
        ):
            # Sorted pages that do not line up: the server does not sort the whole collection.
            # Start again by plain offset; fetch() de-duplicates what was already taken.
            log.warning(
                "tenant %r: %s pages do not follow sourcedId order; starting again by offset",
                client.tenant,
                stats.endpoint,
            )
            anchored, stats.sorted_by_server, consumed, served = False, False, 0, None
            seen.clear()
            continue
        if (
            anchored
            and anchor is not None
            and offset > 0
            and n
            and ids.first is not None
            and ids.first > anchor
        ):
            stats.drift_rewinds += 1
            rewind = max(1, rewind * 2)
            if rewind > 64 * (served or requested):
                raise OneRosterError(
                    client.tenant,
                    stats.endpoint,
                    "the collection changes faster than it can be paged",
                )
            continue
        rewind = 0
        if anchored and anchor is not None:
            records = ids.after(anchor)
            full = n >= (stats.page_size_served or requested)
            if not len(records) and not full:
                return  # nothing past the anchor on a short page: the end of the collection
        if len(records):
            idle = 0
            stats.records_received += len(records)
            yield records
        if anchored:
            anchor = ids.greatest(anchor)
        consumed = offset + n
        if n == 0 or page.has_next is False:
            return
        if page.total is not None and consumed >= page.total:
            return
        if served is None:
            served = n
            if n < requested:
                if page.total is None and page.has_next is None:
                    continue  # short first page: the end, or a silent clamp; the next page tells
                stats.page_size_served = n  # the count or a Link says there is more: clamped
            continue
        if n < served:
            return
        if served < requested and stats.page_size_served is None:
            stats.page_size_served = served
            log.warning(
                "tenant %r: %s serves %d records per page, not the %d asked for",
                client.tenant,
                stats.endpoint,
                served,
                requested,
            )
