"""A small OneRoster REST client: retries, bounded concurrency, drift-safe pagination.

Plain Python over httpx. One client per tenant; it is safe to share between threads.
"""

from __future__ import annotations

import email.utils
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..memory import release_response
from .collections import Collection
from .columnar import decode_page
from .errors import OneRosterError, TransientError, error_message, imsx_message
from .normalise import Rejects, arrow_schema, normalise_page, strictly_ascending

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded in count and in time; exponential backoff with full jitter."""

    max_attempts: int = 6
    max_elapsed_s: float = 300.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        return random.uniform(0, min(self.backoff_cap_s, self.backoff_base_s * 2**attempt))


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


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

    @property
    def reconciled(self) -> bool | None:
        """Whether the provider's own count matches what we kept (None: it sent no count)."""
        if not self.totals_reported:
            return None
        return self.totals_reported[-1] == self.records_received - self.duplicates


@dataclass
class FetchResult:
    table: pa.Table
    rejects: Rejects
    stats: FetchStats


class OneRosterClient:
    def __init__(
        self,
        tenant: str,
        base_url: str,
        auth: httpx.Auth | None,
        *,
        page_size: int = 1000,
        max_concurrency: int = 2,
        sort: bool = True,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.tenant = tenant
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.max_concurrency = max_concurrency
        self.sort = sort
        self.retry = retry or RetryPolicy()
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._http = httpx.Client(
            auth=auth,
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 15.0)),
            # Never follow redirects: credentials go to the tenant's configured host only.
            follow_redirects=False,
            headers={"Accept": "application/json", **(headers or {})},
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OneRosterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ one request

    def get_json(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        columnar: Callable[[bytes], pa.Table | None] | None = None,
    ) -> tuple[Any, httpx.Headers]:
        """GET base_url/path with retries; the decoded body and the response headers.

        ``columnar``, when given, decodes a successful body straight into a table; when it
        returns None the body is decoded as JSON as usual.
        """
        body, headers, _ = self.request_json("GET", path, params, columnar=columnar)
        return body, headers

    def request_json(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        columnar: Callable[[bytes], pa.Table | None] | None = None,
    ) -> tuple[Any, httpx.Headers, int]:
        """A request with retries on transient failures (a OneRoster PUT is create-or-update,
        so repeating it is safe); the decoded body, the response headers and status."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        content = None if body is None else orjson.dumps(body)
        extra = {} if content is None else {"Content-Type": "application/json"}
        endpoint = urlsplit(url).path
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                with self._slots:
                    response = self._http.request(
                        method, url, params=params, content=content, headers=extra
                    )
                try:
                    decoded = self._decode(response, endpoint, columnar)
                finally:
                    release_response(response)
                return decoded, response.headers, response.status_code
            except TransientError as exc:
                error: OneRosterError = exc
                if exc.status == 429:
                    retry_after = retry_after_seconds(response.headers.get("retry-after"))
            except httpx.TimeoutException:
                error = TransientError(self.tenant, endpoint, "timed out")
            except httpx.TransportError as exc:
                error = TransientError(
                    self.tenant, endpoint, f"connection failed ({type(exc).__name__})"
                )
            delay = self.retry.delay(attempt - 1, retry_after)
            elapsed = time.monotonic() - started
            if attempt >= self.retry.max_attempts or elapsed + delay > self.retry.max_elapsed_s:
                raise OneRosterError(
                    self.tenant,
                    endpoint,
                    f"gave up after {attempt} attempts: {error.sis_message}",
                    error.status,
                    transient=True,
                ) from None
            self._count("retries")
            log.warning("%s; retrying in %.1fs", error, delay)
            time.sleep(delay)

    def _decode(
        self,
        response: httpx.Response,
        endpoint: str,
        columnar: Callable[[bytes], pa.Table | None] | None = None,
    ) -> Any:
        status = response.status_code
        content_type = response.headers.get("content-type", "")
        if status in RETRY_STATUSES:
            raise TransientError(
                self.tenant, endpoint, error_message(response.content, content_type), status
            )
        if 300 <= status < 400:
            target = urlsplit(response.headers.get("location", "")).netloc or "another location"
            raise OneRosterError(
                self.tenant,
                endpoint,
                f"redirected to {target}; not followed, credentials stay with the configured host",
                status,
            )
        if status == 204 or (200 <= status < 300 and not response.content.strip()):
            return {}
        if not 200 <= status < 300:
            raise OneRosterError(
                self.tenant, endpoint, error_message(response.content, content_type), status
            )
        if columnar is not None and (table := columnar(response.content)) is not None:
            return table
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            # A 200 whose body is cut or not JSON: a proxy or a dropped stream, worth another try.
            raise TransientError(
                self.tenant,
                endpoint,
                f"response is not valid JSON ({error_message(response.content, content_type)[:80]})",
                status,
            ) from None
        message = imsx_message(body)
        if message:
            raise OneRosterError(self.tenant, endpoint, message, status)
        return body

    _counters = threading.local()

    def _count(self, name: str) -> None:
        stats: FetchStats | None = getattr(self._counters, "stats", None)
        if stats is not None:
            setattr(stats, name, getattr(stats, name) + 1)

    # ------------------------------------------------------------ one collection

    def get_page(
        self, collection: Collection, offset: int, limit: int, sort: bool, columnar: bool = True
    ) -> Page:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if sort:
            params |= {"sort": "sourcedId", "orderBy": "asc"}
        decode = (lambda content: decode_page(collection, content)) if columnar else None
        body, headers = self.get_json(collection.endpoint, params, columnar=decode)
        self._count("requests")
        records = (
            body if isinstance(body, pa.Table) else envelope_records(body, collection, self.tenant)
        )
        return Page(records, _total(headers), _has_next(headers))

    def fetch(
        self, collection: Collection, hook: Callable[[dict], None] | None = None
    ) -> FetchResult:
        """Every record of a collection, normalised; see :func:`paginate`."""
        stats = FetchStats(endpoint=urlsplit(f"{self.base_url}/{collection.endpoint}").path)
        self._counters.stats = stats
        try:
            tables: list[pa.Table] = []
            rejects = Rejects()
            # A data-minimisation hook sees every record, so it keeps the record path.
            for records in paginate(self, collection, stats, columnar=hook is None):
                if isinstance(records, pa.Table):
                    table, bad = records, Rejects()
                else:
                    table, bad = normalise_page(collection, records, hook)
                tables.append(table)
                rejects.extend(bad)
        finally:
            self._counters.stats = None
        table = pa.concat_tables(tables) if tables else arrow_schema(collection).empty_table()
        if not stats.sorted_by_server and table.num_rows:
            table, dropped = _keep_last_by_id(table)
            stats.duplicates += dropped
        return FetchResult(table, rejects, stats)

    def fetch_many(self, collections: list[Collection]) -> dict[str, FetchResult]:
        """Several collections at once, never more requests in flight than max_concurrency."""
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            futures = {c.name: pool.submit(self.fetch, c) for c in collections}
            return {name: f.result() for name, f in futures.items()}


def envelope_records(body: Any, collection: Collection, tenant: str) -> list[dict]:
    """The records of a collection response, whatever the case of the envelope key."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        wanted = collection.envelope.lower()
        for key, value in body.items():
            if key.lower() == wanted and isinstance(value, list):
                return value
        lists = [v for v in body.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    raise OneRosterError(
        tenant, collection.endpoint, f"response has no {collection.envelope!r} array"
    )


def _total(headers: httpx.Headers) -> int | None:
    for name in ("x-total-count", "x-count"):
        value = headers.get(name)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _has_next(headers: httpx.Headers) -> bool | None:
    link = headers.get("link")
    if link is None:
        return None
    return 'rel="next"' in link or "rel=next" in link


def _keep_last_by_id(table: pa.Table) -> tuple[pa.Table, int]:
    """De-duplicate on sourcedId, the last copy wins (it is the most recently served)."""
    ids = table["sourcedId"]
    idx = pa.array(range(table.num_rows), pa.int64())
    last = pa.table({"id": ids, "i": idx}).group_by("id").aggregate([("i", "max")])["i_max"]
    keep = pc.sort_indices(last)
    out = table.take(pc.take(last, keep))
    return out, table.num_rows - out.num_rows


class _PageIds:
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

    def greatest(self, anchor: Any) -> Any:
        if self.column is not None:
            top = pc.max(self.column).as_py()
            known = [] if top is None else [top]
        else:
            known = [i for i in self.items if i is not None]
        if anchor is not None:
            known.append(anchor)
        return max(known) if known else None


def paginate(
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
    while True:
        offset = max(0, consumed - (1 if anchored and anchor is not None else 0) - rewind)
        page = client.get_page(collection, offset, requested, anchored, columnar)
        stats.pages += 1
        records, n = page.records, len(page.records)
        if page.total is not None:
            stats.totals_reported.append(page.total)
        ids = _PageIds(records)
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
            if not len(records):
                return  # nothing past the anchor: the end of the collection
        if len(records):
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
