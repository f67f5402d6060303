"""The SIS's OneRoster gradebook service: read categories, lineItems and results; PUT ours.

The same client as rostering (auth, retries, no redirects), on the gradebook base, with the
gradebook scopes and, for Infinite Campus, the ``x-vendor-authorization`` header.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from ..core.tenants import Tenant, read_secret, removal_method
from ..oneroster.auth import SCOPE_PREFIX
from ..oneroster.client import OneRosterClient, RetryPolicy
from ..oneroster.errors import OneRosterError
from ..oneroster.paging import total_count
from ..oneroster.source import build_auth

SCOPES = ("gradebook.readonly", "gradebook.createput")


def gradebook_scope(version: str, deletes: bool = False) -> str:
    """The gradebook scopes; ``gradebook.delete`` too when removals are DELETEs."""
    scopes = SCOPES + (("gradebook.delete",) if deletes else ())
    return " ".join(SCOPE_PREFIX[version] + s for s in scopes)


def gradebook_base(tenant: Tenant) -> str:
    """1.1 serves the gradebook beside rostering; 1.2 under /ims/oneroster/gradebook/v1p2."""
    if tenant.gpb.base_url:
        return tenant.gpb.base_url.rstrip("/")
    base = (tenant.oneroster.base_url or "").rstrip("/")
    if tenant.oneroster.version == "1.2":
        return base.replace("/rostering/v1p2", "/gradebook/v1p2")
    return base


class SisGradebook:
    """Reads and writes of one tenant's SIS gradebook; paths are relative to its base."""

    def __init__(self, client: OneRosterClient):
        self.client = client
        self.tenant = client.tenant
        self.puts = 0
        self.reads = 0

    def _list(self, path: str, envelope: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset, limit = 0, self.client.page_size
        while True:
            body, headers = self.client.get_json(path, {"limit": limit, "offset": offset})
            self.reads += 1
            records = body.get(envelope) if isinstance(body, dict) else None
            if not isinstance(records, list):
                raise OneRosterError(self.tenant, path, f"response has no {envelope!r} list")
            out.extend(records)
            offset += len(records)
            total = total_count(headers)
            # Without a count, only an empty page ends the list: a SIS may clamp the limit.
            if not records or (total is not None and offset >= total):
                return out

    def categories(self) -> list[dict[str, Any]]:
        return self._list("/categories", "categories")

    def class_line_items(self, class_id: str) -> list[dict[str, Any]]:
        return self._list(f"/classes/{_seg(class_id)}/lineItems", "lineItems")

    def class_results(self, class_id: str) -> list[dict[str, Any]]:
        return self._list(f"/classes/{_seg(class_id)}/results", "results")

    def delete(self, path: str) -> int:
        """DELETE a record of ours; 404 (already gone) is an answer, not a failure."""
        self.puts += 1
        try:
            _, _, status = self.client.request_json("DELETE", path)
        except OneRosterError as exc:
            if exc.status == 404:
                return 404
            raise
        return status

    def put(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """PUT a record; the HTTP status and the SIS's answer (Modified: it holds the sourcedId)."""
        self.puts += 1
        answer, _, status = self.client.request_json("PUT", path, body=body)
        return status, answer if isinstance(answer, dict) else {}


def _seg(value: str) -> str:
    return quote(value, safe="")


def vendor_header(tenant_id: str, tenant: Tenant, env: Mapping[str, str]) -> dict[str, str]:
    """Infinite Campus's ``x-vendor-authorization``, when the tenant names its key and secret."""
    cfg = tenant.gpb
    if cfg.vendor_key_env is None:
        return {}
    key = read_secret(env, tenant_id, "gpb.vendor_key_env", cfg.vendor_key_env)
    secret = read_secret(env, tenant_id, "gpb.vendor_secret_env", cfg.vendor_secret_env)
    return {"x-vendor-authorization": f"{key}:{secret}"}


def gradebook_client(
    tenant_id: str,
    tenant: Tenant,
    auth: httpx.Auth,
    base: str,
    headers: dict[str, str],
    transport: httpx.BaseTransport | None = None,
) -> OneRosterClient:
    cfg = tenant.oneroster
    return OneRosterClient(
        tenant_id,
        base,
        auth,
        page_size=min(cfg.page_size, 1000),
        max_concurrency=tenant.gpb.max_concurrency,
        timeout_s=cfg.timeout_s,
        retry=RetryPolicy(max_attempts=cfg.retry_attempts, backoff_base_s=cfg.retry_backoff_s),
        headers=headers,
        transport=transport,
    )


@contextmanager
def open_gradebook(
    tenant_id: str,
    tenant: Tenant,
    env: Mapping[str, str] = os.environ,
    transport: httpx.BaseTransport | None = None,
) -> Iterator[SisGradebook]:
    """The tenant's SIS gradebook, with the gradebook scopes (and vendor header)."""
    scope = gradebook_scope(tenant.oneroster.version, removal_method(tenant) == "delete")
    auth = build_auth(tenant_id, tenant, env, scope=scope)
    headers = vendor_header(tenant_id, tenant, env)
    base = gradebook_base(tenant)
    with gradebook_client(tenant_id, tenant, auth, base, headers, transport) as client:
        yield SisGradebook(client)
