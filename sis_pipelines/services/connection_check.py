"""Whether a tenant's services answer, in seconds and without writing anything: the SIS
(host, credentials, each collection's first page: the count it reports, the page size it
really serves, whether it sorts, how long it takes), a CSV drop (reachable, a bundle for the
night), the SIS gradebook when grades pass back (with Infinite Campus's vendor header), and
Canvas (the account, and whether the token may post SIS imports).

Each line is OK or FAIL with the reason in the service's own words; no secret is ever in it
(the errors it quotes are the clients' own, which never carry one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

from ..canvas.api import Polling
from ..canvas.gateway import load_drop
from ..core.errors import SisPipelinesError
from ..core.tenant_night import TenantNight
from ..core.tenants import Tenant
from ..oneroster.collections import COLLECTIONS
from ..oneroster.csv_source import locate_drop
from ..oneroster.paging import PageIds
from .connect import Services


@dataclass(frozen=True)
class Line:
    tenant: str
    what: str
    ok: bool
    detail: str


# A check answers in seconds: few retries, short timeouts (a night's run keeps the tenant's own).
QUICK = {"retry_attempts": 2, "retry_backoff_s": 0.2, "timeout_s": 15.0}
QUICK_CANVAS = Polling(throttle_retries=1)


def check_tenant(services: Services, tn: TenantNight) -> list[Line]:
    """Every check of the tenant, a line each (its night: the one its SIS serves now)."""
    tenant_id, tenant, night = tn.id, tn.tenant, tn.night
    if tenant.gateway:
        return _canvas_drop(services, tenant_id, tenant, night) + _canvas(
            services, tenant_id, tenant
        )
    assert tenant.oneroster is not None
    quick = {k: min(v, getattr(tenant.oneroster, k)) for k, v in QUICK.items()}
    tenant = tenant.model_copy(update={"oneroster": tenant.oneroster.model_copy(update=quick)})
    lines = (
        _csv_drop(services, tenant_id, tenant, night)
        if tenant.oneroster.source == "csv"
        else _rostering(services, tenant_id, tenant, night)
    )
    if tenant.gpb.endpoints != "off":  # grades go back over REST, also for a CSV tenant
        lines += _gradebook(services, tenant_id, tenant, night)
    if tenant.canvas is not None:
        lines += _canvas(services, tenant_id, tenant)
    return lines


def _gradebook(services: Services, tenant_id: str, tenant: Tenant, night: date) -> list[Line]:
    """The SIS gradebook answers (with Infinite Campus's vendor header, when it needs one)."""
    what = "gradebook categories"
    started = time.monotonic()
    try:
        with services.gradebook(tenant_id, tenant, night) as sis:
            found = sis.categories()
    except SisPipelinesError as exc:
        return [Line(tenant_id, what, False, str(exc))]
    took = (time.monotonic() - started) * 1000
    return [Line(tenant_id, what, True, f"{len(found)} categories; {took:.0f} ms")]


def _rostering(services: Services, tenant_id: str, tenant: Tenant, night: date) -> list[Line]:
    cfg = tenant.oneroster
    lines: list[Line] = []
    try:
        with services.rostering(tenant_id, tenant, night) as client:
            for collection in COLLECTIONS.values():
                if tenant.privacy.leaves_out(collection.name):
                    continue  # never asked for: the token has no scope for it
                what = f"oneroster {collection.endpoint}"
                started = time.monotonic()
                try:
                    page = client.get_page(collection, 0, cfg.page_size, cfg.sort, columnar=False)
                except SisPipelinesError as exc:
                    lines.append(Line(tenant_id, what, False, str(exc)))
                    if len(lines) == 1:
                        break  # the first request failed: host or credentials, said once
                    continue
                took = (time.monotonic() - started) * 1000
                served = len(page.records)
                # A short page with neither count nor next link: the last page, or a clamp.
                clamped = (
                    0 < served < cfg.page_size
                    and page.total is None
                    and not page.has_next
                    and bool(client.get_page(collection, served, 1, cfg.sort, False).records)
                )
                lines.append(Line(tenant_id, what, True, _page_detail(page, cfg, took, clamped)))
    except SisPipelinesError as exc:  # a secret not set, a source that cannot open
        lines.append(Line(tenant_id, "oneroster", False, str(exc)))
    return lines


def _page_detail(page, cfg, took_ms: float, clamped: bool) -> str:
    records = page.records
    served = len(records)
    parts = [f"{served} records on the first page"]
    if page.total is not None:
        parts[0] += f" of {page.total} the SIS reports"
    else:
        parts.append("no count header")
    expected = min(cfg.page_size, page.total) if page.total is not None else cfg.page_size
    if clamped or (served < expected and (page.total is not None or page.has_next)):
        parts.append(f"pages clamped to {served} (asked {cfg.page_size})")
    if cfg.sort and served > 1:
        parts.append("sorted" if PageIds(records).ascending() else "sort not honoured")
    parts.append(f"{took_ms:.0f} ms")
    return "; ".join(parts)


def _csv_drop(services: Services, tenant_id: str, tenant: Tenant, night: date) -> list[Line]:
    try:
        located = services.csv_bundle(tenant_id, tenant, night)
    except SisPipelinesError as exc:
        return [Line(tenant_id, "csv drop", False, str(exc))]
    files = ", ".join(sorted(located.bundle.files)) or "no files"
    return [Line(tenant_id, "csv drop", True, f"{located.name} for {night} ({files})")]


def _canvas_drop(services: Services, tenant_id: str, tenant: Tenant, night: date) -> list[Line]:
    """The CSV Gateway drop's location answers and holds a drop for the night."""
    assert tenant.canvas_csv is not None
    try:
        located = locate_drop(tenant_id, tenant.canvas_csv, night, load_drop, services.env)
    except SisPipelinesError as exc:
        return [Line(tenant_id, "canvas csv drop", False, str(exc))]
    files = ", ".join(sorted(located.bundle.files))
    return [Line(tenant_id, "canvas csv drop", True, f"{located.name} for {night} ({files})")]


def _canvas(services: Services, tenant_id: str, tenant: Tenant) -> list[Line]:
    assert tenant.canvas is not None
    account = tenant.canvas.account_id
    lines: list[Line] = []
    try:
        with services.canvas(tenant_id, tenant, polling=QUICK_CANVAS) as api:
            try:
                found = api.get(f"/api/v1/accounts/{account}")
                name = found.get("name", "") if isinstance(found, dict) else ""
                lines.append(Line(tenant_id, "canvas account", True, f"{account} {name}".strip()))
                api.get(f"/api/v1/accounts/{account}/sis_imports", params={"per_page": 1})
                lines.append(Line(tenant_id, "canvas sis imports", True, "the token may import"))
            except SisPipelinesError as exc:
                what = "canvas account" if not lines else "canvas sis imports"
                lines.append(Line(tenant_id, what, False, str(exc)))
    except SisPipelinesError as exc:
        lines.append(Line(tenant_id, "canvas", False, str(exc)))
    return lines
