"""The simulators as a tenant's services (``source: simulator``): a plug-in of ``connect``.

Registered as the entry point ``sis_pipelines.simulated_services: simulator``. Each call
starts a simulated SIS on a loopback port of its own with throw-away credentials, or reuses
the tenant's Canvas simulator, and hands back the same clients a real tenant gets.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from functools import lru_cache
from pathlib import Path

import httpx

from ..canvas.api import CanvasClient, Polling
from ..core.nights import end_of_night
from ..core.tenants import Tenant, removal_method
from ..gpb.sis import SisGradebook as GradebookClient
from ..gpb.sis import gradebook_client, gradebook_scope
from ..oneroster.auth import ClientCredentials, OAuth1HmacSha256, default_scope
from ..oneroster.client import OneRosterClient
from ..oneroster.source import rest_client
from .canvas import CanvasSimulator
from .district import District
from .server import SimulatorServer
from .sis_gradebook import SisGradebook as SimulatedGradebook
from .vendors import VENDORS

_CANVAS: dict[str, CanvasSimulator] = {}
_LOCK = threading.Lock()


@lru_cache(maxsize=16)
def district(students: int, seed: int) -> District:
    # Shared by the collections of a run, so a synthetic night is generated once.
    return District(students, seed)


def canvas_simulator(tenant_id: str, state_dir: Path) -> CanvasSimulator:
    """One Canvas simulator per tenant and process; its state persists in ``state_dir``."""
    with _LOCK:
        sim = _CANVAS.get(tenant_id)
        state_file = state_dir / f"{tenant_id}.json"
        if sim is None or sim.state_file != state_file:
            sim = CanvasSimulator(state_file=state_file).start()
            _CANVAS[tenant_id] = sim
        return sim


def simulator_auth(sim: SimulatorServer, tenant_id: str, secret: str, scope: str) -> httpx.Auth:
    """The auth a simulated SIS of the tenant's vendor expects, with throw-away credentials."""
    if sim.profile.auth == "oauth1":
        return OAuth1HmacSha256(tenant_id, secret)
    return ClientCredentials(tenant_id, sim.token_url, tenant_id, secret, scope)


class Simulators:
    """The bundled simulators, their state kept under the lake (``state(service)``)."""

    def __init__(self, state: Callable[[str], Path]):
        self.state = state

    @contextmanager
    def _sis(self, tenant_id: str, tenant: Tenant, night: date, **kwargs: object):
        cfg = tenant.oneroster
        secret = secrets.token_urlsafe(16)
        with SimulatorServer(
            VENDORS[tenant.vendor].with_(version=cfg.version),
            night=night,
            client_id=tenant_id,
            client_secret=secret,
            district=district(cfg.students, cfg.seed),
            **kwargs,  # type: ignore[arg-type]
        ) as sim:
            sim.add_faults(cfg.simulator_faults)  # the tenant's scripted faults, per tenant
            sim.add_flaws(cfg.simulator_flaws)
            yield sim, secret

    @contextmanager
    def rostering(self, tenant_id: str, tenant: Tenant, night: date) -> Iterator[OneRosterClient]:
        with self._sis(tenant_id, tenant, night) as (sim, secret):
            scope = default_scope(tenant.oneroster.version, tenant.privacy.demographics)
            auth = simulator_auth(sim, tenant_id, secret, scope)
            with rest_client(tenant_id, tenant, auth, sim.base_url) as client:
                yield client

    @contextmanager
    def gradebook(self, tenant_id: str, tenant: Tenant, night: date) -> Iterator[GradebookClient]:
        """The SIS gradebook, whose state lives in ``<state>/<tenant>.gradebook.json``."""
        version = tenant.oneroster.version
        vendor_key = secrets.token_urlsafe(12) if tenant.vendor == "infinite_campus" else None
        vendor = f"{tenant_id}:{vendor_key}" if vendor_key else None
        store = SimulatedGradebook(
            version,
            self.state("oneroster") / f"{tenant_id}.gradebook.json",
            vendor_authorization=vendor,
        )
        with self._sis(tenant_id, tenant, night, gradebook=store) as (sim, secret):
            scope = gradebook_scope(version, removal_method(tenant) == "delete")
            auth = simulator_auth(sim, tenant_id, secret, scope)
            headers = {"x-vendor-authorization": vendor} if vendor else {}
            with gradebook_client(tenant_id, tenant, auth, sim.gradebook_url, headers) as client:
                yield GradebookClient(client)

    @contextmanager
    def canvas(
        self, tenant_id: str, tenant: Tenant, night: date | None, polling: Polling | None
    ) -> Iterator[CanvasClient]:
        """The tenant's simulated Canvas; its gradebooks stand as at the end of ``night``."""
        cfg = tenant.canvas
        assert cfg is not None
        sim = canvas_simulator(tenant_id, self.state("canvas"))
        sim.gradebook_share = cfg.gradebook_share
        if cfg.simulator_fail_imports:
            sim.fail_next = max(sim.fail_next, 1_000_000)
        # A night's pass sees Canvas as at the end of the night; an intraday sync, now.
        sim.clock = end_of_night(night) if night is not None else None
        with CanvasClient(
            tenant_id,
            sim.base_url,
            sim.token,
            cfg.account_id,
            polling or Polling(first_wait_s=0.05, max_wait_s=0.2),
        ) as client:
            yield client
