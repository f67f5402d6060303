"""Resources: the tenants file and the data directory."""

from __future__ import annotations

import dagster as dg
from upath import UPath

from ..storage import data_dir, output_path
from ..tenants import Tenant, TenantsFile, load_tenants, tenants_path


class TenantsResource(dg.ConfigurableResource):
    """The tenants file, read at run time (it names secrets' variables, never secrets)."""

    path: str

    def load(self) -> TenantsFile:
        return load_tenants(self.path)

    def tenant(self, tenant_id: str) -> Tenant:
        tenants = self.load().tenants
        if tenant_id not in tenants:
            raise dg.Failure(f"tenant {tenant_id!r} is not in the tenants file {self.path}")
        return tenants[tenant_id]


class DataLake(dg.ConfigurableResource):
    """The root of every output (local path or fsspec URL)."""

    root: str

    def path(self, area: str, kind: str, night: str, tenant: str, suffix: str = ".parquet") -> UPath:
        return output_path(self.root, area, kind, night, tenant, suffix)


def default_resources() -> dict[str, object]:
    from .io_manager import ParquetIOManager

    root = data_dir()
    return {
        "tenants": TenantsResource(path=str(tenants_path())),
        "lake": DataLake(root=root),
        "io_manager": ParquetIOManager(base_path=root),
    }
