"""A small OneRoster REST client: retries, bounded concurrency, a page of a collection.

Plain Python over httpx. One client per tenant; it is safe to share between threads. How
the pages of a collection are walked without losing or repeating rows is ``paging``.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson
import pyarrow as pa

from ..core.errors import retryable_status
from ..core.memory import release_response
from .collections import Collection
from .columnar import decode_page
from .errors import OneRosterError, error_message, imsx_message
from .normalise import Rejects, arrow_schema, normalise_page
from .paging import FetchStats, Page, has_next, keep_last_by_id, paginate, total_count

log = logging.getLogger(__name__)

# The largest answer taken: a page of 50,000 enrollments is some 30 MB.
MAX_ANSWER_BYTES = 1 << 30
# A whole answer must arrive within this many read timeouts: a server that sends a byte
# now and then (a slow-loris body) never trips a read timeout on its own.
ANSWER_TIMEOUTS = 5


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
        self.answer_s = ANSWER_TIMEOUTS * timeout_s
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
                    response = self._answer(method, url, params, content, extra, endpoint)
                try:
                    decoded = self._decode(response, endpoint, columnar)
                finally:
                    release_response(response)
                return decoded, response.headers, response.status_code
            except OneRosterError as exc:
                if not exc.retryable:
                    raise
                error = exc
                if exc.status == 429:
                    retry_after = retry_after_seconds(response.headers.get("retry-after"))
            except httpx.TimeoutException:
                error = OneRosterError(self.tenant, endpoint, "timed out", retryable=True)
            except httpx.TransportError as exc:
                error = OneRosterError(
                    self.tenant,
                    endpoint,
                    f"connection failed ({type(exc).__name__})",
                    retryable=True,
                )
            delay = self.retry.delay(attempt - 1, retry_after)
            elapsed = time.monotonic() - started
            if attempt >= self.retry.max_attempts or elapsed + delay > self.retry.max_elapsed_s:
                raise OneRosterError(
                    self.tenant,
                    endpoint,
                    f"gave up after {attempt} attempts: {error.sis_message}",
                    error.status,
                    retryable=True,
                ) from None
            self._count("retries")
            log.warning("%s; retrying in %.1fs", error, delay)
            time.sleep(delay)

    def _answer(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None,
        content: bytes | None,
        headers: dict[str, str],
        endpoint: str,
    ) -> httpx.Response:
        """The whole answer, read within ``answer_s`` and ``MAX_ANSWER_BYTES``."""
        deadline = time.monotonic() + self.answer_s
        with self._http.stream(
            method, url, params=params, content=content, headers=headers
        ) as response:
            declared = int(response.headers.get("content-length") or 0)
            if declared > MAX_ANSWER_BYTES:
                raise OneRosterError(
                    self.tenant,
                    endpoint,
                    f"the answer would be {declared / 1e6:,.0f} MB, above "
                    f"{MAX_ANSWER_BYTES / 1e6:,.0f} MB; not read",
                    response.status_code,
                )
            parts, size = [], 0
            for part in response.iter_bytes():  # as they arrive
                size += len(part)
                if size > MAX_ANSWER_BYTES:
                    raise OneRosterError(
                        self.tenant,
                        endpoint,
                        f"the answer goes on past {MAX_ANSWER_BYTES / 1e6:,.0f} MB; not read further",
                        response.status_code,
                    )
                if time.monotonic() > deadline:
                    raise OneRosterError(
                        self.tenant,
                        endpoint,
                        f"the answer was still arriving after {self.answer_s:.0f}s ({size:,} bytes)",
                        response.status_code,
                        retryable=True,
                    )
                parts.append(part)
        release_response(response)  # (its stream is read and closed)
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=response.request
        )

    def _decode(
        self,
        response: httpx.Response,
        endpoint: str,
        columnar: Callable[[bytes], pa.Table | None] | None = None,
    ) -> Any:
        status = response.status_code
        content_type = response.headers.get("content-type", "")
        if retryable_status(status):  # throttled, timed out, the server's failure
            raise OneRosterError(
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
            raise OneRosterError(
                self.tenant,
                endpoint,
                f"response is not valid JSON ({error_message(response.content, content_type)[:80]})",
                status,
                retryable=True,
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
        return Page(records, total_count(headers), has_next(headers))

    def stats_for(self, collection: Collection) -> FetchStats:
        return FetchStats(endpoint=urlsplit(f"{self.base_url}/{collection.endpoint}").path)

    def by_school(
        self,
        collection: Collection,
        schools: list[str],
        stats: FetchStats,
        hook: Callable[[dict], None] | None = None,
    ) -> Iterator[tuple[pa.Table, Rejects]]:
        """The collection read school by school (``/schools/{id}/classes`` …), one walk each;
        ``stats`` sums them. A record under two schools comes twice: whoever keeps them
        de-duplicates."""
        for school in schools:
            of_school = replace(
                collection, endpoint=f"schools/{quote(school, safe='')}/{collection.endpoint}"
            )
            part = self.stats_for(of_school)
            yield from self.pages(of_school, part, hook)
            stats.absorb(part)

    def pages(
        self,
        collection: Collection,
        stats: FetchStats,
        hook: Callable[[dict], None] | None = None,
    ) -> Iterator[tuple[pa.Table, Rejects]]:
        """The collection's normalised pages as they arrive, each with its rejects (``stats``
        filled as they come). Pages may repeat records (see :func:`paginate`): whoever keeps
        them de-duplicates, the last copy winning, unless ``stats.sorted_by_server``."""
        self._counters.stats = stats
        try:
            # A data-minimisation hook sees every record, so it keeps the record path.
            for records in paginate(self, collection, stats, columnar=hook is None):
                if isinstance(records, pa.Table):
                    yield records, Rejects()
                else:
                    yield normalise_page(collection, records, hook)
        finally:
            self._counters.stats = None

    def fetch(
        self, collection: Collection, hook: Callable[[dict], None] | None = None
    ) -> FetchResult:
        """Every record of a collection, normalised, in one table."""
        stats = self.stats_for(collection)
        tables: list[pa.Table] = []
        rejects = Rejects()
        for table, bad in self.pages(collection, stats, hook):
            tables.append(table)
            rejects.extend(bad)
        table = pa.concat_tables(tables) if tables else arrow_schema(collection).empty_table()
        if not stats.sorted_by_server and table.num_rows:
            table, dropped = keep_last_by_id(table)
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
