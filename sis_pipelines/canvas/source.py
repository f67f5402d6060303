"""A tenant's real Canvas: its base URL, account and the token from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

from ..core.tenants import Tenant, read_secret
from .api import CanvasClient, Polling


def open_canvas(
    tenant_id: str,
    tenant: Tenant,
    env: Mapping[str, str] = os.environ,
    polling: Polling | None = None,
    transport: httpx.BaseTransport | None = None,
) -> CanvasClient:
    """A client for the tenant's Canvas (a context manager)."""
    cfg = tenant.canvas
    assert cfg is not None
    token = read_secret(env, tenant_id, "canvas.token_env", cfg.token_env)
    return CanvasClient(
        tenant_id, cfg.base_url, token, cfg.account_id, polling, transport=transport
    )
