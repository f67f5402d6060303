"""The OneRoster simulator over real HTTP: token endpoint, OAuth 1.0a checks, 1.1 and 1.2
rostering bindings with paging, filter, sort, fields, count and Link headers, imsx errors,
and injectable faults for tests.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
import pandas as pd
from authlib.oauth1.rfc5849.signature import generate_signature_base_string
from authlib.oauth1.rfc5849.wrapper import OAuth1Request

from ..oneroster.auth import hmac_sha256_signature
from ..oneroster.collections import COLLECTIONS
from .district import District
from .render import Renderer
from .render_page import PageRenderer
from .sis_gradebook import ENVELOPES, SisGradebook, imsx_status
from .vendors import VENDORS, VendorProfile

BASE_1P1 = "/ims/oneroster/v1p1"
BASE_1P2 = "/ims/oneroster/rostering/v1p2"
GRADEBOOK_1P2 = "/ims/oneroster/gradebook/v1p2"
ENDPOINTS = {c.endpoint: c.name for c in COLLECTIONS.values()}
# Filtered views of a collection: endpoint -> (collection, column, allowed values)
VIEWS = {
    "terms": ("academic_sessions", "type", {"term", "semester"}),
    "gradingPeriods": ("academic_sessions", "type", {"gradingPeriod"}),
    "schools": ("orgs", "type", {"school"}),
    "students": ("users", "role", {"student"}),
    "teachers": ("users", "role", {"teacher"}),
}
FILTER = re.compile(r"^\s*([A-Za-z.]+)\s*(>=|<=|!=|=|>|<|~)\s*'([^']*)'\s*$")
OAUTH1_SKEW_S = 600


@dataclass
class Fault:
    """A scripted failure: for requests whose path contains ``path``, after ``skip`` of them
    passed, the next ``times`` get this answer. ``kind``: status | drop | truncate | delay."""

    path: str = ""
    status: int = 500
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] | None = None
    times: int = 1
    skip: int = 0
    kind: str = "status"
    delay_s: float = 0.0
    seen: int = 0


def imsx(major: str, minor: str, description: str) -> bytes:
    return imsx_status(major, minor, description)


class SimulatorServer:
    """A OneRoster provider on 127.0.0.1 serving one vendor's view of a synthetic district.

    Use as a context manager; ``base_url`` and ``token_url`` say where it listens.
    """

    def __init__(
        self,
        vendor: str | VendorProfile = "genesis",
        *,
        students: int = 2000,
        seed: int = 1,
        night: date | None = None,
        client_id: str = "demo",
        client_secret: str = "demo-secret",
        port: int = 0,
        district: District | None = None,
        gradebook: SisGradebook | None = None,
    ):
        self.profile = VENDORS[vendor] if isinstance(vendor, str) else vendor
        self.district = district or District(students, seed)
        self.night = night or date.today()
        self.client_id = client_id
        self.client_secret = client_secret
        self.gradebook = gradebook
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []  # (method, path?query) as received
        self.auth_headers: list[str] = []
        self.on_page: Callable[[str, int], None] | None = None  # drift hook: (collection, offset)
        self._tokens: dict[str, float] = {}
        self._nonces: set[str] = set()
        self._lock = threading.Lock()
        self._frames: dict[str, pd.DataFrame] | None = None
        # Whole collections in a served order, sorted once rather than for every page.
        self._ordered: dict[tuple[str, str], pd.DataFrame] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root + (BASE_1P2 if self.profile.version == "1.2" else BASE_1P1)

    @property
    def gradebook_url(self) -> str:
        return self.root + (GRADEBOOK_1P2 if self.profile.version == "1.2" else BASE_1P1)

    def gradebook_parts(self, path: str) -> list[str] | None:
        """The gradebook route of a path (``["classes", id, "results"]``), or None."""
        base = GRADEBOOK_1P2 if self.profile.version == "1.2" else BASE_1P1
        if self.gradebook is None or not path.startswith(base + "/"):
            return None
        parts = [unquote(p) for p in path[len(base) + 1 :].strip("/").split("/")]
        if parts[0] in ENVELOPES or (
            len(parts) == 3 and parts[0] == "classes" and parts[2] in ("lineItems", "results")
        ):
            return parts
        return None

    @property
    def token_url(self) -> str:
        return f"{self.root}/oauth/token{self.profile.token_query}"

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"oneroster-sim-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self.gradebook is not None:
            self.gradebook.save()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ data

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        """The served data; tests may edit it (drift) through :meth:`mutate`."""
        with self._lock:
            if self._frames is None:
                self._frames = {
                    k: v.sort_values("sourcedId", ignore_index=True)
                    for k, v in self.district.snapshot(self.night).items()
                }
            return self._frames

    def mutate(self, collection: str, frame: pd.DataFrame) -> None:
        with self._lock:
            assert self._frames is not None
            self._frames[collection] = frame.sort_values("sourcedId", ignore_index=True)
            self._ordered = {k: v for k, v in self._ordered.items() if k[0] != collection}

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def add_fault(self, **kwargs: Any) -> Fault:
        fault = Fault(**kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def add_faults(self, faults: list[dict[str, Any]]) -> None:
        """Faults as the tenants file writes them (``oneroster.simulator_faults``)."""
        for fault in faults:
            body = fault.get("body")
            self.add_fault(
                **{**fault, **({"body": body.encode()} if isinstance(body, str) else {})}
            )

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.path in path and fault.times > 0:
                    fault.seen += 1
                    if fault.seen > fault.skip:
                        fault.times -= 1
                        return fault
        return None

    # ------------------------------------------------------------ auth

    def issue_token(self, authorization: str, form: dict[str, list[str]]) -> tuple[int, bytes]:
        client_id = secret = None
        if authorization.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
                client_id, secret = unquote(client_id), unquote(secret)
            except (ValueError, UnicodeDecodeError):
                pass
        client_id = client_id or (form.get("client_id") or [None])[0]
        secret = secret or (form.get("client_secret") or [None])[0]
        if (form.get("grant_type") or [None])[0] != "client_credentials":
            return 400, orjson.dumps({"error": "unsupported_grant_type"})
        if client_id != self.client_id or not hmac.compare_digest(secret or "", self.client_secret):
            return 401, orjson.dumps({"error": "invalid_client"})
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.time() + self.profile.token_ttl_s
        scope = (form.get("scope") or [""])[0]
        return 200, orjson.dumps(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.profile.token_ttl_s,
                "scope": scope,
            }
        )

    def authorised(self, method: str, url: str, headers: dict[str, str]) -> str | None:
        """None when the request may pass, else the reason it may not."""
        authorization = headers.get("authorization", "")
        if self.profile.auth == "oauth1":
            return self._check_oauth1(method, url, headers)
        if not authorization.lower().startswith("bearer "):
            return "missing bearer token"
        with self._lock:
            expires = self._tokens.get(authorization[7:].strip())
        if expires is None or expires < time.time():
            return "invalid or expired token"
        return None

    def _check_oauth1(self, method: str, url: str, headers: dict[str, str]) -> str | None:
        if not headers.get("authorization", "").startswith("OAuth "):
            return "missing OAuth 1.0a Authorization header"
        request = OAuth1Request(
            method,
            url,
            None,
            {"Authorization": headers.get("authorization", ""), "Host": headers.get("host", "")},
        )
        if request.client_id != self.client_id:
            return "unknown consumer key"
        if request.signature_method != "HMAC-SHA256":
            return f"signature method {request.signature_method} not accepted"
        try:
            skew = abs(time.time() - int(request.timestamp))
        except (TypeError, ValueError):
            return "bad timestamp"
        if skew > OAUTH1_SKEW_S:
            return "timestamp out of range"
        expected = hmac_sha256_signature(
            generate_signature_base_string(request), self.client_secret
        )
        if not hmac.compare_digest(expected, request.signature or ""):
            return "signature mismatch"
        with self._lock:
            if request.oauth_params.get("oauth_nonce") in self._nonces:
                return "nonce reused"
            self._nonces.add(request.oauth_params.get("oauth_nonce"))
        return None

    # ------------------------------------------------------------ rostering

    def rostering(
        self, path: str, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, str], bytes]:
        base = BASE_1P2 if self.profile.version == "1.2" else BASE_1P1
        if not path.startswith(base + "/"):
            return 404, {}, imsx("failure", "unknownobject", f"no such route {path}")
        parts = path[len(base) + 1 :].strip("/").split("/")
        endpoint = parts[0]
        if endpoint in ENDPOINTS:
            name, view = ENDPOINTS[endpoint], None
        elif endpoint in VIEWS:
            name, view = VIEWS[endpoint][0], VIEWS[endpoint]
        else:
            return 404, {}, imsx("failure", "unknownobject", f"no such endpoint {endpoint}")
        frame = self.frames[name]
        if view is not None:
            frame = frame[frame[view[1]].isin(view[2])]
        renderer = Renderer(self.profile, self.base_url)
        collection = COLLECTIONS[name]
        envelope = collection.envelope
        if self.profile.lowercase_session_envelope and name == "academic_sessions":
            envelope = envelope.lower()
        if len(parts) == 2:
            hit = frame[frame["sourcedId"] == parts[1]]
            if hit.empty:
                return 404, {}, imsx("failure", "unknownobject", f"{endpoint} {parts[1]} not found")
            singular = (
                envelope[:-1] if envelope.endswith("s") and envelope != "demographics" else envelope
            )
            return 200, {}, orjson.dumps({singular: renderer.record(name, hit.iloc[0].to_dict())})
        try:
            limit = int(query.get("limit", [self.profile.default_page_size])[0])
            offset = int(query.get("offset", ["0"])[0])
        except ValueError:
            return 400, {}, imsx("failure", "invaliddata", "limit and offset must be integers")
        if limit < 1 or offset < 0:
            return 400, {}, imsx("failure", "invaliddata", "limit must be >= 1 and offset >= 0")
        limit = min(limit, self.profile.max_page_size)
        if "filter" in query:
            frame, error = _apply_filter(frame, collection, query["filter"][0])
            if error:
                return 400, {}, imsx("failure", "invalid_filter_field", error)
        if "sort" in query and self.profile.honours_sort:
            field = query["sort"][0]
            if field not in frame.columns:
                return 400, {}, imsx("failure", "invalid_sort_field", f"cannot sort on {field}")
            order = f"{field} {query.get('orderBy', ['asc'])[0]}"
        elif not self.profile.natural_order_sorted:
            order = "natural"
        else:
            order = "sourcedId asc"
        if self.on_page is not None:
            self.on_page(name, offset)
            if view is None and "filter" not in query:
                frame = self.frames[name]
        whole = view is None and "filter" not in query
        frame = self._in_order(name, frame, order, cache=whole)
        total = len(frame)
        rows = frame.iloc[offset : offset + limit]
        if "fields" not in query:
            body = PageRenderer(self.profile, self.base_url).page(name, rows)
            headers = self._page_headers(endpoint, offset, limit, total)
            return 200, headers, b'{"' + envelope.encode() + b'":' + body + b"}"
        records = [renderer.record(name, row) for row in rows.to_dict("records")]
        if "fields" in query:
            wanted = [f.strip() for f in query["fields"][0].split(",") if f.strip()]
            known = {f.rest_name for f in collection.fields} | {"roles"}
            unknown = [f for f in wanted if f not in known]
            if unknown:
                return (
                    400,
                    {},
                    imsx("failure", "invalid_selection_field", f"unknown fields {unknown}"),
                )
            records = [{k: r[k] for k in wanted if k in r} for r in records]
        headers = self._page_headers(endpoint, offset, limit, total)
        return 200, headers, orjson.dumps({envelope: records})

    def _page_headers(self, endpoint: str, offset: int, limit: int, total: int) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.profile.count_header:
            headers[self.profile.count_header] = str(total)
        if self.profile.link_headers:
            headers["Link"] = _links(self.base_url + "/" + endpoint, offset, limit, total)
        return headers

    def _in_order(self, name: str, frame: pd.DataFrame, order: str, cache: bool) -> pd.DataFrame:
        """The frame in the served order; a whole collection's is kept until it changes."""
        key = (name, order)
        with self._lock:
            if cache and key in self._ordered:
                return self._ordered[key]
        if order == "natural":
            # A provider's natural order (its database's): stable, but not sourcedId order.
            hashed = pd.util.hash_pandas_object(frame["sourcedId"], index=False)
            ordered = frame.assign(_o=hashed.to_numpy()).sort_values("_o", kind="stable")
            ordered = ordered.drop(columns="_o")
        elif order != "sourcedId asc":
            field, direction = order.rsplit(" ", 1)
            ordered = frame.sort_values(field, ascending=direction != "desc", kind="stable")
        else:
            ordered = frame
        with self._lock:
            if cache and self._frames is not None and self._frames.get(name) is frame:
                self._ordered[key] = ordered  # not if the collection changed meanwhile
        return ordered


def _links(url: str, offset: int, limit: int, total: int) -> str:
    links = [f'<{url}?limit={limit}&offset=0>; rel="first"']
    last = max(0, ((total - 1) // limit) * limit)
    links.append(f'<{url}?limit={limit}&offset={last}>; rel="last"')
    if offset + limit < total:
        links.append(f'<{url}?limit={limit}&offset={offset + limit}>; rel="next"')
    if offset > 0:
        links.append(f'<{url}?limit={limit}&offset={max(0, offset - limit)}>; rel="prev"')
    return ", ".join(links)


def _apply_filter(
    frame: pd.DataFrame, collection: Any, expression: str
) -> tuple[pd.DataFrame, str | None]:
    """OneRoster filter: up to two predicates joined by one AND or OR."""
    joiner = " AND " if " AND " in expression else " OR " if " OR " in expression else None
    clauses = expression.split(joiner) if joiner else [expression]
    if len(clauses) > 2:
        return frame, "at most two predicates"
    masks = []
    columns = {f.rest_name: f.column for f in collection.fields}
    for clause in clauses:
        match = FILTER.match(clause)
        if not match:
            return frame, f"cannot parse filter {clause!r}"
        field, op, value = match.groups()
        column = columns.get(field)
        if column is None or column not in frame.columns:
            return frame, f"unknown filter field {field}"
        series = frame[column]
        if column == "dateLastModified":
            series = pd.to_datetime(series, utc=True)
            value_cmp: Any = pd.Timestamp(value)
            value_cmp = value_cmp.tz_localize("UTC") if value_cmp.tzinfo is None else value_cmp
        else:
            series = series.astype(str)
            value_cmp = value
        masks.append(
            {
                "=": lambda s, v: s == v,
                "!=": lambda s, v: s != v,
                ">": lambda s, v: s > v,
                ">=": lambda s, v: s >= v,
                "<": lambda s, v: s < v,
                "<=": lambda s, v: s <= v,
                "~": lambda s, v: s.astype(str).str.contains(v, regex=False),
            }[op](series, value_cmp)
        )
    mask = (
        masks[0]
        if len(masks) == 1
        else (masks[0] & masks[1] if joiner == " AND " else masks[0] | masks[1])
    )
    return frame[mask], None


def _handler(sim: SimulatorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one segment per answer: no 40 ms delayed-ACK stalls

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(
            self,
            status: int,
            body: bytes,
            headers: dict[str, str] | None = None,
            content_type: str = "application/json",
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _fault(self, fault: Fault) -> bool:
            if fault.kind == "delay":
                time.sleep(fault.delay_s)
                return False
            if fault.kind == "drop":
                self.close_connection = True
                self.connection.close()
                return True
            if fault.kind == "truncate":
                body = b'{"users": [{"sourcedId": "x", "giv'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) + 100))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True
                self.connection.close()
                return True
            self._send(fault.status, fault.body, fault.headers, fault.content_type)
            return True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            sim.requests.append(("POST", self.path))
            fault = sim._take_fault(self.path)
            if fault is not None and self._fault(fault):
                return
            if urlsplit(self.path).path != "/oauth/token":
                self._send(404, imsx("failure", "unknownobject", "not found"))
                return
            status, body = sim.issue_token(self.headers.get("Authorization", ""), parse_qs(raw))
            self._send(status, body)

        def _gate(self, method: str) -> bool:
            """Record the request, play a scripted fault, check its credentials."""
            sim.requests.append((method, self.path))
            sim.auth_headers.append(self.headers.get("Authorization", ""))
            fault = sim._take_fault(self.path)
            if fault is not None and self._fault(fault):
                return False
            url = f"http://{self.headers.get('Host', f'127.0.0.1:{sim.port}')}{self.path}"
            reason = sim.authorised(method, url, {k.lower(): v for k, v in self.headers.items()})
            if reason:
                self._send(
                    401,
                    imsx(
                        "failure",
                        "unauthorisedrequest",
                        f"{sim.profile.name.title()} SIS: {reason}",
                    ),
                )
                return False
            return True

        def do_GET(self) -> None:
            if not self._gate("GET"):
                return
            split = urlsplit(self.path)
            parts = sim.gradebook_parts(split.path)
            if parts is not None and sim.gradebook is not None:
                if not self._vendor_authorised():
                    return
                status, headers, body = sim.gradebook.get(parts, parse_qs(split.query))
            else:
                status, headers, body = sim.rostering(split.path, parse_qs(split.query))
            self._send(status, body, headers)

        def _vendor_authorised(self) -> bool:
            assert sim.gradebook is not None
            if sim.gradebook.authorised({k.lower(): v for k, v in self.headers.items()}):
                return True
            self._send(
                401,
                imsx(
                    "failure",
                    "unauthorisedrequest",
                    f"{sim.profile.name.title()} SIS: gradebook calls need x-vendor-authorization",
                ),
            )
            return False

        def do_PUT(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self._gate("PUT"):
                return
            parts = sim.gradebook_parts(urlsplit(self.path).path)
            if parts is None or sim.gradebook is None:
                self._send(404, imsx("failure", "unknownobject", "not found"))
                return
            if not self._vendor_authorised():
                return
            status, body = sim.gradebook.put(parts, raw)
            self._send(status, body)

    return Handler
