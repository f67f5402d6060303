"""Resources: the tenants file and the lake.

Both default to the environment read when a run starts (SIS_PIPELINES_TENANTS,
SIS_PIPELINES_DATA_DIR), not when the code location loads, and an unset variable means the
documented default (``./tenants.yaml``, ``./data``): ``dg.EnvVar`` would make it an error.
"""

from __future__ import annotations

import dagster as dg

from ..core.lake import Lake
from ..core.tenants import Tenant, TenantsFile, load_tenants, tenants_path


class TenantsResource(dg.ConfigurableResource):
    """The tenants file, read at run time (it names secrets' variables, never secrets)."""

    path: str = ""  # empty: SIS_PIPELINES_TENANTS, read when a run starts

    def load(self) -> TenantsFile:
        return load_tenants(self.path or tenants_path())

    def tenant(self, tenant_id: str) -> Tenant:
        tenants = self.load().tenants
        if tenant_id not in tenants:
            raise dg.Failure(
                f"tenant {tenant_id!r} is not in the tenants file {self.path or tenants_path()}",
                allow_retries=False,
            )
        return tenants[tenant_id]


class DataLake(dg.ConfigurableResource):
    """The root of every output (local path or fsspec URL)."""

    root: str = ""  # empty: SIS_PIPELINES_DATA_DIR, read when a run starts

    def lake(self) -> Lake:
        return Lake.at(self.root)


def default_resources() -> dict[str, object]:
    from .io_manager import ParquetIOManager

    # Paths stay empty so that each run reads the environment it runs in.
    return {"tenants": TenantsResource(), "lake": DataLake(), "io_manager": ParquetIOManager()}
