"""The Canvas sis_imports API: post a zip, follow it to a terminal state, within throttling."""

from __future__ import annotations

import io
import logging
import random
import threading
import time
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO

import httpx
import orjson
import pandas as pd

from ..core.errors import SourceError, retryable_status
from ..core.memory import release_response

log = logging.getLogger(__name__)

TERMINAL = {
    "imported",
    "imported_with_messages",
    "aborted",
    "failed",
    "failed_with_messages",
    "restored",
    "partially_restored",
}
FAILED = {"aborted", "failed", "failed_with_messages"}


class CanvasError(SourceError):
    """Canvas refused or failed a request: a later attempt may succeed as its HTTP status says
    (a refused token, 401, will not); without a status (a report that did not finish, an
    answer that is not what Canvas documents) it may."""

    def __init__(self, tenant: str, endpoint: str, message: str, status: int | None = None):
        super().__init__(
            f"tenant {tenant!r}, Canvas {endpoint}: {'HTTP ' + str(status) + ': ' if status else ''}{message}",
            status=status,
            retryable=retryable_status(status),
        )


@dataclass(frozen=True)
class Polling:
    first_wait_s: float = 2.0
    max_wait_s: float = 60.0
    timeout_s: float = 4 * 3600.0
    throttle_retries: int = 8


def _throttled(response: httpx.Response) -> bool:
    # Canvas's source answers 403 "Rate Limit Exceeded"; newer docs say 429: both are throttling.
    return response.status_code == 429 or (
        response.status_code == 403 and b"Rate Limit Exceeded" in response.content
    )


class CanvasClient:
    def __init__(
        self,
        tenant: str,
        base_url: str,
        token: str,
        account_id: int | str,
        polling: Polling | None = None,
        timeout_s: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.tenant = tenant
        self.account_id = account_id
        self.polling = polling or Polling()
        self.requests = 0
        self.throttled = 0
        self._counting = threading.Lock()  # gradebook reads run on several threads
        self._transport = transport
        self._files: httpx.Client | None = None
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout_s,
            follow_redirects=False,  # the token goes to the tenant's Canvas host only
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()
        if self._files is not None:
            self._files.close()

    def __enter__(self) -> CanvasClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return orjson.loads(response.content)
        finally:
            release_response(response)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.polling.throttle_retries + 1):
            with self._counting:
                self.requests += 1
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt == self.polling.throttle_retries:
                    raise CanvasError(
                        self.tenant, path, f"connection failed ({type(exc).__name__})"
                    ) from None
                time.sleep(min(30.0, 0.5 * 2**attempt))
                continue
            if _throttled(response) or response.status_code >= 500:
                with self._counting:
                    self.throttled += _throttled(response)
                if attempt == self.polling.throttle_retries:
                    break
                wait = float(
                    response.headers.get("Retry-After")
                    or random.uniform(0.5, min(30.0, 2**attempt))
                )
                # Throttling is Canvas's pacing, expected and counted (canvas_throttled);
                # a server error is worth a warning.
                log.log(
                    logging.DEBUG if _throttled(response) else logging.WARNING,
                    "tenant %r: Canvas %s answered %s; waiting %.1fs",
                    self.tenant,
                    path,
                    response.status_code,
                    wait,
                )
                time.sleep(wait)
                continue
            if response.status_code >= 400:
                raise CanvasError(self.tenant, path, _message(response), response.status_code)
            return response
        raise CanvasError(
            self.tenant,
            path,
            f"still throttled or failing after {self.polling.throttle_retries + 1} attempts",
            response.status_code,
        )

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """One Canvas object (or page), decoded."""
        return self._send("GET", path, params=params)

    def get_all(
        self, path: str, params: dict[str, Any] | None = None, envelope: str | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a paginated Canvas list, following its Link ``next`` on this host only;
        ``envelope``: the list is that key of each page (a compound document's ``events``)."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, Any] | None = {"per_page": 100, **(params or {})}
        base = self._http.base_url
        while url is not None:
            response = self._request("GET", url, params=query)
            page = orjson.loads(response.content)
            release_response(response)  # links and headers stay readable
            if envelope is not None and isinstance(page, dict):
                page = page.get(envelope)
            if not isinstance(page, list):
                raise CanvasError(self.tenant, path, "expected a list")
            items.extend(page)
            following = response.links.get("next", {}).get("url")
            if following is None:
                break
            target = httpx.URL(following)
            if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
                raise CanvasError(
                    self.tenant,
                    path,
                    f"pagination points to another host ({target.host}); not followed, the token stays with the tenant's Canvas",
                )
            url, query = following, None
        return items

    def account_report(
        self, report: str, parameters: dict[str, str], into: BinaryIO | None = None
    ) -> bytes:
        """An account report's file (Reports API): started, followed to its end, fetched from
        this host only; streamed ``into`` a file when given (a district's grade export is a row
        per student enrollment: too large to hold), and then b"" is returned."""
        path = f"/api/v1/accounts/{self.account_id}/reports/{report}"
        started = self._send(
            "POST", path, data={f"parameters[{k}]": v for k, v in parameters.items()}
        )
        waited, wait = 0.0, self.polling.first_wait_s
        while started.get("status") not in ("complete", "error"):
            if waited > self.polling.timeout_s:
                raise CanvasError(self.tenant, path, f"the {report} report did not finish")
            time.sleep(wait)
            waited, wait = waited + wait, min(wait * 2, self.polling.max_wait_s)
            started = self._send("GET", f"{path}/{started['id']}")
        url = (started.get("attachment") or {}).get("url") or started.get("file_url")
        if started.get("status") == "error" or not url:
            raise CanvasError(self.tenant, path, f"the {report} report failed: {started}")
        return self._file(path, url, into)

    def _file(self, path: str, url: str, into: BinaryIO | None) -> bytes:
        """A file Canvas serves: on its own host with the token (throttling waited out, as
        for every request there); Canvas redirects a download to its file store, which is
        fetched without the token (the token stays with Canvas; the redirect's URL carries its
        own signature)."""
        base = self._http.base_url
        for _ in range(4):
            target = httpx.URL(url)
            if (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port):
                response = self._request("GET", url)
                if response.is_redirect:
                    url = str(response.url.join(response.headers.get("location", "")))
                    continue
                try:
                    data = response.content
                finally:
                    release_response(response)
                if into is None:
                    return data
                into.write(data)
                return b""
            with self._counting:
                self.requests += 1
            with self._file_store().stream("GET", url) as response:
                if response.is_redirect:
                    url = str(response.url.join(response.headers.get("location", "")))
                    continue
                if response.status_code >= 400:
                    response.read()
                    raise CanvasError(self.tenant, path, _message(response), response.status_code)
                if into is None:
                    return response.read()
                for chunk in response.iter_bytes(1 << 20):
                    into.write(chunk)
                return b""
        raise CanvasError(self.tenant, path, "the report file redirects too many times")

    def _file_store(self) -> httpx.Client:
        """A client for Canvas's file store: no token, no default headers."""
        if self._files is None:
            self._files = httpx.Client(timeout=self._http.timeout, transport=self._transport)
        return self._files

    def sis_export(self) -> dict[str, pd.DataFrame]:
        """The SIS data the account holds now, through Canvas's SIS export report (Reports API):
        a frame per SIS import file, every cell text (None when empty)."""
        kinds = (
            "accounts",
            "terms",
            "courses",
            "sections",
            "users",
            "enrollments",
            "user_observers",
        )
        data = self.account_report("sis_export_csv", {k: "true" for k in kinds})
        frames: dict[str, pd.DataFrame] = {}
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for member in z.namelist():
                if member.endswith(".csv"):
                    frame = pd.read_csv(z.open(member), dtype=str, keep_default_na=False)
                    frames[member.removesuffix(".csv")] = frame.where(frame != "", None)
        return frames

    def post_sis_import(self, data: bytes, params: dict[str, Any]) -> dict[str, Any]:
        path = f"/api/v1/accounts/{self.account_id}/sis_imports"
        query = {"import_type": "instructure_csv", "extension": "zip", **params}
        return self._send(
            "POST", path, params=query, content=data, headers={"Content-Type": "application/zip"}
        )

    def sis_imports_since(self, since: str) -> list[dict[str, Any]]:
        """The account's SIS imports created at ``since`` (ISO 8601) or later."""
        return self.get_all(
            f"/api/v1/accounts/{self.account_id}/sis_imports",
            {"created_since": since},
            envelope="sis_imports",
        )

    def sis_import(self, import_id: int | str) -> dict[str, Any]:
        return self._send("GET", f"/api/v1/accounts/{self.account_id}/sis_imports/{import_id}")

    def wait(self, import_id: int | str) -> dict[str, Any]:
        """Poll with backoff until the import reaches a terminal state."""
        started = time.monotonic()
        wait = self.polling.first_wait_s
        while True:
            state = self.sis_import(import_id)
            if state.get("workflow_state") in TERMINAL:
                return state
            if time.monotonic() - started > self.polling.timeout_s:
                raise CanvasError(
                    self.tenant,
                    f"sis_imports/{import_id}",
                    f"still {state.get('workflow_state')} after {self.polling.timeout_s:.0f}s",
                )
            time.sleep(wait)
            wait = min(self.polling.max_wait_s, wait * 2)


def _message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:300]
    if isinstance(body, dict) and body.get("errors"):
        errors = body["errors"]
        if isinstance(errors, list):
            return "; ".join(
                str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
            )[:300]
        return str(errors)[:300]
    return str(body)[:300]


def import_messages(state: dict[str, Any]) -> list[str]:
    out = []
    for key in ("processing_errors", "processing_warnings"):
        for item in state.get(key) or []:
            out.append(": ".join(str(x) for x in item) if isinstance(item, list) else str(item))
    return out
