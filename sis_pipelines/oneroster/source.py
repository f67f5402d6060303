"""Open a tenant's OneRoster REST source: the SIS itself, or the bundled simulator."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from functools import lru_cache

import httpx

from ..tenants import Tenant
from .auth import BearerToken, ClientCredentials, OAuth1HmacSha256, default_scope
from .client import OneRosterClient, RetryPolicy


class MissingSecretError(RuntimeError):
    pass


def _secret(tenant_id: str, key: str, env_name: str | None, env: Mapping[str, str]) -> str:
    value = env.get(env_name or "")
    if not value:
        raise MissingSecretError(
            f"tenant {tenant_id!r}: environment variable {env_name} ({key}) is not set"
        )
    return value


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
        return BearerToken(_secret(tenant_id, "auth.token_env", auth.token_env, env))
    client_id = _secret(tenant_id, "auth.client_id_env", auth.client_id_env, env)
    client_secret = _secret(tenant_id, "auth.client_secret_env", auth.client_secret_env, env)
    if auth.type == "oauth1":
        return OAuth1HmacSha256(client_id, client_secret)
    assert auth.token_url is not None
    return ClientCredentials(
        tenant_id,
        auth.token_url,
        client_id,
        client_secret,
        scope or auth.scope or default_scope(cfg.version),
    )


def rest_client(
    tenant_id: str,
    tenant: Tenant,
    auth: httpx.Auth,
    base_url: str,
    retry: RetryPolicy | None = None,
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
    )


def simulator_auth(sim: object, tenant_id: str, client_secret: str, scope: str) -> httpx.Auth:
    """The auth a simulated SIS of the tenant's vendor expects, with throw-away credentials."""
    if sim.profile.auth == "oauth1":  # type: ignore[attr-defined]
        return OAuth1HmacSha256(tenant_id, client_secret)
    return ClientCredentials(tenant_id, sim.token_url, tenant_id, client_secret, scope)  # type: ignore[attr-defined]


@lru_cache(maxsize=16)
def _district(students: int, seed: int) -> object:
    # Shared by the collections of a run, so a synthetic night is generated once.
    from ..simulator.district import District

    return District(students, seed)


@contextmanager
def open_rostering(
    tenant_id: str, tenant: Tenant, night: date, env: Mapping[str, str] = os.environ
) -> Iterator[OneRosterClient]:
    """A client for the tenant's rostering service as it stands for ``night``.

    A real SIS serves only its present state; the simulator serves the night asked for,
    on a loopback port of its own, with throw-away credentials.
    """
    cfg = tenant.oneroster
    if cfg.source == "rest":
        assert cfg.base_url is not None
        with rest_client(
            tenant_id, tenant, build_auth(tenant_id, tenant, env), cfg.base_url
        ) as client:
            yield client
        return
    if cfg.source == "simulator":
        from ..simulator.server import SimulatorServer
        from ..simulator.vendors import VENDORS

        profile = VENDORS[tenant.vendor].with_(version=cfg.version)
        client_secret = secrets.token_urlsafe(16)
        district = _district(cfg.students, cfg.seed)
        with SimulatorServer(
            profile,
            night=night,
            client_id=tenant_id,
            client_secret=client_secret,
            district=district,
        ) as sim:  # type: ignore[arg-type]
            sim.add_faults(cfg.simulator_faults)
            auth = simulator_auth(sim, tenant_id, client_secret, default_scope(cfg.version))
            with rest_client(tenant_id, tenant, auth, sim.base_url) as client:
                yield client
        return
    raise NotImplementedError(
        f"tenant {tenant_id!r}: OneRoster source {cfg.source!r} is not a REST source"
    )
