"""One tenant's one night: the unit every step works on, and the lake as it sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from upath import UPath

    from .lake import Lake
    from .tenants import Tenant


@dataclass(frozen=True)
class TenantNight:
    """A tenant (its id and its entry of the tenants file) and a night."""

    id: str
    tenant: Tenant
    night: date

    def __str__(self) -> str:
        return f"tenant {self.id!r}, night {self.night}"

    def files(self, lake: Lake) -> NightFiles:
        return NightFiles(lake, str(self.night), self.id)


class OfTenantNight:
    """Work for one tenant-night (a step, a snapshot request): its id, tenant and night at
    hand. The class declares ``tn``."""

    tn: TenantNight

    @property
    def tenant_id(self) -> str:
        return self.tn.id

    @property
    def tenant(self) -> Tenant:
        return self.tn.tenant

    @property
    def night(self) -> date:
        return self.tn.night


@dataclass(frozen=True)
class NightFiles:
    """The lake's files of one tenant-night, without repeating the night and the tenant."""

    lake: Lake
    night: str
    tenant: str

    def snapshot(self, collection: str) -> UPath:
        return self.lake.snapshot(collection, self.night, self.tenant)

    def quarantine(self, collection: str) -> UPath:
        return self.lake.quarantine(collection, self.night, self.tenant)

    def repairs(self, collection: str) -> UPath:
        return self.lake.repairs(collection, self.night, self.tenant)

    def canvas_file(self, name: str) -> UPath:
        return self.lake.canvas_file(name, self.night, self.tenant)

    def canvas_retained(self, name: str) -> UPath:
        return self.lake.canvas_retained(name, self.night, self.tenant)

    def out_of_scope(self) -> UPath:
        return self.lake.out_of_scope(self.night, self.tenant)

    def changes(self) -> UPath:
        return self.lake.changes(self.night, self.tenant)

    def sis_import_zip(self) -> UPath:
        return self.lake.sis_import_zip(self.night, self.tenant)

    def evaluation(self) -> UPath:
        return self.lake.evaluation(self.night, self.tenant)

    def evaluation_report(self) -> UPath:
        return self.lake.evaluation_report(self.night, self.tenant)

    def conversion(self, suffix: str = ".parquet") -> UPath:
        return self.lake.conversion(self.night, self.tenant, suffix)

    def gateway_rejects(self) -> UPath:
        return self.lake.gateway_rejects(self.night, self.tenant)

    def gradebook_frame(self, name: str) -> UPath:
        return self.lake.gradebook_frame(name, self.night, self.tenant)

    def gpb_requests(self) -> UPath:
        return self.lake.gpb_requests(self.night, self.tenant)

    def gpb_outcomes(self) -> UPath:
        return self.lake.gpb_outcomes(self.night, self.tenant)

    def gpb_report(self) -> UPath:
        return self.lake.gpb_report(self.night, self.tenant)
