"""The OneRoster simulator: one vendor's view of a synthetic district, served over real HTTP
(``http``), with its credentials (``provider_auth``), scripted faults (``faults``), the 1.1
and 1.2 rostering bindings with paging, filter (``query``), sort, fields, count and Link
headers, imsx errors, and optionally a SIS gradebook (``sis_gradebook``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import orjson
import pandas as pd

from ..oneroster.collections import COLLECTIONS
from .district import District
from .faults import Fault, FaultScript
from .http import handler_for, imsx
from .provider_auth import ProviderAuth
from .query import apply_filter, links
from .render import Renderer
from .render_page import PageRenderer
from .sis_gradebook import ENVELOPES, SisGradebook
from .vendors import VENDORS, VendorProfile

BASE_1P1 = "/ims/oneroster/v1p1"
BASE_1P2 = "/ims/oneroster/rostering/v1p2"
GRADEBOOK_1P2 = "/ims/oneroster/gradebook/v1p2"
POLL_S = 0.05  # how soon a stopped server stops (serve_forever checks this often)
ENDPOINTS = {c.endpoint: c.name for c in COLLECTIONS.values()}
# Filtered views of a collection: endpoint -> (collection, column, allowed values)
VIEWS = {
    "terms": ("academic_sessions", "type", {"term", "semester"}),
    "gradingPeriods": ("academic_sessions", "type", {"gradingPeriod"}),
    "schools": ("orgs", "type", {"school"}),
    "students": ("users", "role", {"student"}),
    "teachers": ("users", "role", {"teacher"}),
}
# A school's collections (/schools/{id}/…): endpoint -> the column naming the school.
OF_SCHOOL = {
    "classes": "schoolSourcedId",
    "courses": "orgSourcedId",
    "enrollments": "schoolSourcedId",
}


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
        self.auth = ProviderAuth(self.profile, client_id, client_secret)
        self.fault_script = FaultScript()
        self.requests: list[tuple[str, str]] = []  # (method, path?query) as received
        self.auth_headers: list[str] = []
        self.on_page: Callable[[str, int], None] | None = None  # drift hook: (collection, offset)
        self._lock = threading.Lock()
        self._frames: dict[str, pd.DataFrame] | None = None
        # Whole collections in a served order, sorted once rather than for every page.
        self._ordered: dict[tuple[str, str], pd.DataFrame] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler_for(self))
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
            target=self._httpd.serve_forever,
            args=(POLL_S,),
            name=f"oneroster-sim-{self.port}",
            daemon=True,
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
                    for k, v in self.district.snapshot(
                        self.night, self.profile.keeps_tobedeleted_days
                    ).items()
                }
            return self._frames

    def mutate(self, collection: str, frame: pd.DataFrame) -> None:
        with self._lock:
            assert self._frames is not None
            self._frames[collection] = frame.sort_values("sourcedId", ignore_index=True)
            self._ordered = {k: v for k, v in self._ordered.items() if k[0] != collection}

    def add_flaws(self, flaws: dict[str, int]) -> None:
        """Sends ``n`` records of each collection flawed, as real SIS exports are. Users and
        enrollments: a role no OneRoster list has (quarantined; users broken are guardians, to
        which no enrollment refers, so only they go). Classes: a classType written in another
        case, ``Scheduled`` (repaired)."""
        for collection, n in flaws.items():
            frame = self.frames[collection].copy()
            if collection == "classes":
                scheduled = frame.index[frame["classType"] == "scheduled"][:n]
                frame.loc[scheduled, "classType"] = "Scheduled"
            else:
                pool = frame[frame["role"] == "guardian"] if collection == "users" else frame
                frame.loc[pool.index[:n], "role"] = "wizard"
            self.mutate(collection, frame)

    def expire_tokens(self) -> None:
        self.auth.expire_tokens()

    @property
    def faults(self) -> list[Fault]:
        return self.fault_script.faults

    def add_fault(self, **kwargs: Any) -> Fault:
        return self.fault_script.add(**kwargs)

    def add_faults(self, faults: list[dict[str, Any]]) -> None:
        """Faults as the tenants file writes them (``oneroster.simulator_faults``)."""
        self.fault_script.add_all(faults)

    # ------------------------------------------------------------ rostering

    def rostering(
        self, path: str, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, str], bytes]:
        base = BASE_1P2 if self.profile.version == "1.2" else BASE_1P1
        if not path.startswith(base + "/"):
            return 404, {}, imsx("failure", "unknownobject", f"no such route {path}")
        parts = path[len(base) + 1 :].strip("/").split("/")
        school = None
        if len(parts) == 3 and parts[0] == "schools" and parts[2] in OF_SCHOOL:
            school, parts = unquote(parts[1]), parts[2:]  # /schools/{id}/classes …
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
        if school is not None:
            orgs = self.frames["orgs"]
            if not ((orgs["sourcedId"] == school) & (orgs["type"] == "school")).any():
                return 404, {}, imsx("failure", "unknownobject", f"school {school} not found")
            frame = frame[frame[OF_SCHOOL[endpoint]] == school]
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
            frame, error = apply_filter(frame, collection, query["filter"][0])
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
        start = offset if self.profile.honours_offset else 0
        rows = frame.iloc[start : start + limit]
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
            headers["Link"] = links(self.base_url + "/" + endpoint, offset, limit, total)
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
