"""Parquet through Dagster's UPath IO manager, at the paths the lake gives each asset."""

from __future__ import annotations

import dagster as dg
import pandas as pd
from upath import UPath

from ..core.errors import StoredStateError
from ..core.lake import Lake
from ..core.memory import release_memory
from ..core.storage import StoredFile, read_frame, write_frame


class ParquetIO(dg.UPathIOManager):
    extension = ".parquet"

    def __init__(self, base_path: UPath):
        super().__init__(base_path=base_path)
        self.lake = Lake(base_path)

    def get_path_for_partition(
        self, context: dg.InputContext | dg.OutputContext, path: UPath, partition: str
    ) -> UPath:
        # Multi-partition keys arrive as "<night>/<tenant>" (dimensions in name order).
        night, tenant = partition.split("/")
        # Dagster appends the extension itself.
        return self.lake.asset_file(context.asset_key.path, night, tenant).with_suffix("")

    # Step boundaries: what earlier steps left (frames in reference cycles) goes before the
    # next collection is fetched or a step loads its inputs.
    def dump_to_path(
        self, context: dg.OutputContext, obj: pd.DataFrame | StoredFile, path: UPath
    ) -> None:
        if isinstance(obj, StoredFile):  # written batch by batch by the step itself
            if obj.path != path:
                raise StoredStateError(f"{obj.path} was stored where the lake expects {path}")
        else:
            write_frame(obj, path)
        release_memory()

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        release_memory()
        metadata = context.definition_metadata or {}
        try:
            return read_frame(path, metadata.get("columns"), metadata.get("dictionary"))
        except FileNotFoundError:
            # A step of a night whose upstream was never stored (a backfill of nights the
            # nightly job never ran): say which and what to run, not a missing file.
            key, group = "/".join(context.asset_key.path), context.asset_key.path[0]
            tenant, night = path.stem, path.parent.name
            raise StoredStateError(
                f"tenant {tenant!r}, night {night}: no {key} snapshot stored; materialize it "
                f"first: sis-pipelines run --tenant {tenant} --night {night} --select group:{group}"
            ) from None


class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Atomic Parquet files on a local disk or any fsspec store (s3://, gs://, abfs://)."""

    base_path: str = ""  # empty: SIS_PIPELINES_DATA_DIR, read when a run starts

    def create_io_manager(self, context: dg.InitResourceContext) -> ParquetIO:
        return ParquetIO(base_path=Lake.at(self.base_path).root)
