"""A tenant's real OneRoster REST service: its auth and a client on its base URL."""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

from ..core.tenants import Tenant, read_secret
from .auth import BearerToken, ClientCredentials, OAuth1HmacSha256, default_scope
from .client import OneRosterClient, RetryPolicy


def build_auth(
    tenant_id: str,
    tenant: Tenant,
    env: Mapping[str, str] = os.environ,
    scope: str | None = None,
) -> httpx.Auth:
    cfg = tenant.oneroster
    auth = cfg.auth
    assert auth is not None
    if auth.type == "bearer":
        return BearerToken(read_secret(env, tenant_id, "auth.token_env", auth.token_env))
    client_id = read_secret(env, tenant_id, "auth.client_id_env", auth.client_id_env)
    client_secret = read_secret(env, tenant_id, "auth.client_secret_env", auth.client_secret_env)
    if auth.type == "oauth1":
        return OAuth1HmacSha256(client_id, client_secret)
    assert auth.token_url is not None
    return ClientCredentials(
        tenant_id,
        auth.token_url,
        client_id,
        client_secret,
        scope or auth.scope or default_scope(cfg.version, tenant.privacy.demographics),
    )


def rest_client(
    tenant_id: str,
    tenant: Tenant,
    auth: httpx.Auth,
    base_url: str,
    retry: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
) -> OneRosterClient:
    cfg = tenant.oneroster
    retry = retry or RetryPolicy(
        max_attempts=cfg.retry_attempts, backoff_base_s=cfg.retry_backoff_s
    )
    return OneRosterClient(
        tenant_id,
        base_url,
        auth,
        page_size=cfg.page_size,
        max_concurrency=cfg.max_concurrency,
        sort=cfg.sort,
        timeout_s=cfg.timeout_s,
        retry=retry,
        transport=transport,
    )


def open_rest(
    tenant_id: str,
    tenant: Tenant,
    env: Mapping[str, str] = os.environ,
    transport: httpx.BaseTransport | None = None,
) -> OneRosterClient:
    """A client for the tenant's SIS (a context manager), with its credentials."""
    assert tenant.oneroster.base_url is not None
    auth = build_auth(tenant_id, tenant, env)
    return rest_client(tenant_id, tenant, auth, tenant.oneroster.base_url, transport=transport)
