"""Resources: the tenants file and the data directory."""

from __future__ import annotations

import dagster as dg
from upath import UPath

from ..storage import data_dir, output_path
from ..tenants import Tenant, TenantsFile, load_tenants, tenants_path


class TenantsResource(dg.ConfigurableResource):
    """The tenants file, read at run time (it names secrets' variables, never secrets)."""

    path: str = ""  # empty: SIS_PIPELINES_TENANTS, read when a run starts

    def load(self) -> TenantsFile:
        return load_tenants(self.path or tenants_path())

    def tenant(self, tenant_id: str) -> Tenant:
        tenants = self.load().tenants
        if tenant_id not in tenants:
            raise dg.Failure(
                f"tenant {tenant_id!r} is not in the tenants file {self.path or tenants_path()}"
            )
        return tenants[tenant_id]


class DataLake(dg.ConfigurableResource):
    """The root of every output (local path or fsspec URL)."""

    root: str = ""  # empty: SIS_PIPELINES_DATA_DIR, read when a run starts

    def path(
        self, area: str, kind: str, night: str, tenant: str, suffix: str = ".parquet"
    ) -> UPath:
        return output_path(self.root or data_dir(), area, kind, night, tenant, suffix)


def default_resources() -> dict[str, object]:
    from .io_manager import ParquetIOManager

    # Paths stay empty so that each run reads the environment it runs in.
    return {"tenants": TenantsResource(), "lake": DataLake(), "io_manager": ParquetIOManager()}
