"""One place picks the world: a tenant's SIS, SIS gradebook, Canvas and CSV drop, as open
clients, real or simulated.

A tenant whose tenants file says ``source: simulator`` gets the bundled simulators. They are a
plug-in (the entry point group ``sis_pipelines.simulated_services``, which the ``simulator``
package fills): nothing here or in the domain packages imports them, and a deployment without
them simply cannot use ``source: simulator``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib.metadata import entry_points
from typing import Protocol

import httpx

from ..canvas.api import CanvasClient, Polling
from ..canvas.source import open_canvas
from ..core.errors import ConfigurationError
from ..core.lake import Lake
from ..core.nights import end_of_night
from ..core.tenants import Tenant
from ..gpb.sis import SisGradebook, open_gradebook
from ..oneroster.client import OneRosterClient
from ..oneroster.csv_source import Located, locate
from ..oneroster.source import open_rest

PLUGIN_GROUP = "sis_pipelines.simulated_services"


class SimulatedServices(Protocol):
    """What the simulator plug-in provides: the same clients, talking to simulators."""

    def rostering(
        self, tenant_id: str, tenant: Tenant, night: date
    ) -> AbstractContextManager[OneRosterClient]: ...

    def gradebook(
        self, tenant_id: str, tenant: Tenant, night: date
    ) -> AbstractContextManager[SisGradebook]: ...

    def canvas(
        self, tenant_id: str, tenant: Tenant, night: date | None, polling: Polling | None
    ) -> AbstractContextManager[CanvasClient]: ...


def simulated(lake: Lake) -> SimulatedServices:
    found = entry_points(group=PLUGIN_GROUP, name="simulator")
    if not found:
        raise ConfigurationError(
            "source: simulator needs the bundled simulators (install sis_pipelines with pip)"
        )
    factory = next(iter(found)).load()
    return factory(lake.simulator_state)


# A run's collections read one CSV bundle: fetched (or downloaded) once, the latest kept.
_BUNDLES: dict[tuple[str, str, date], Located] = {}


@dataclass
class Services:
    """A tenant's services for a step. ``transport`` is handed to every real client (tests)."""

    lake: Lake
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    transport: httpx.BaseTransport | None = None

    def rostering(
        self, tenant_id: str, tenant: Tenant, night: date
    ) -> AbstractContextManager[OneRosterClient]:
        """The tenant's OneRoster rostering service as it stands for ``night``.

        A real SIS serves only its present state; the simulator serves the night asked for.
        """
        source = tenant.oneroster.source
        if source == "simulator":
            return simulated(self.lake).rostering(tenant_id, tenant, night)
        if source != "rest":
            raise ConfigurationError(
                f"tenant {tenant_id!r}: OneRoster source {source!r} is not a REST source"
            )
        return open_rest(tenant_id, tenant, self.env, self.transport)

    def gradebook(
        self, tenant_id: str, tenant: Tenant, night: date
    ) -> AbstractContextManager[SisGradebook]:
        if tenant.oneroster.source == "simulator":
            return simulated(self.lake).gradebook(tenant_id, tenant, night)
        return open_gradebook(tenant_id, tenant, self.env, self.transport)

    def canvas(
        self,
        tenant_id: str,
        tenant: Tenant,
        night: date | None = None,
        polling: Polling | None = None,
    ) -> AbstractContextManager[CanvasClient]:
        """The tenant's Canvas; a simulated one shows its gradebooks as at the end of ``night``."""
        if tenant.canvas is not None and tenant.canvas.source == "simulator":
            return simulated(self.lake).canvas(tenant_id, tenant, night, polling)
        return open_canvas(tenant_id, tenant, self.env, polling, self.transport)

    def canvas_now(self, tenant: Tenant, night: date) -> datetime:
        """The moment a gradebook read shows: now, or for a simulated Canvas the end of ``night``."""
        if tenant.canvas is not None and tenant.canvas.source == "simulator":
            return end_of_night(night)
        return datetime.now(UTC)

    def csv_bundle(self, tenant_id: str, tenant: Tenant, night: date) -> Located:
        """The tenant's OneRoster CSV bundle for ``night`` (a folder, a zip or SFTP)."""
        key = (tenant_id, tenant.oneroster.path or "", night)
        if key not in _BUNDLES:
            # One bundle at a time: a large district's is hundreds of MB, and a process that
            # runs night after night (a backfill) needs only the night it reads.
            _BUNDLES.clear()
            _BUNDLES[key] = locate(tenant_id, tenant.oneroster, night, self.env)
        return _BUNDLES[key]
