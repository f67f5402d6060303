"""Parquet through Dagster's UPath IO manager: ``<root>/<asset key>/<night>/<tenant>.parquet``."""

from __future__ import annotations

import dagster as dg
import pandas as pd
from upath import UPath

from ..memory import release_memory
from ..storage import data_dir, read_frame, write_frame


class ParquetIO(dg.UPathIOManager):
    extension = ".parquet"

    # Step boundaries: what earlier steps left (frames in reference cycles) goes before the
    # next collection is fetched or a step loads its inputs.
    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        write_frame(obj, path)
        release_memory()

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        release_memory()
        metadata = context.definition_metadata or {}
        return read_frame(path, metadata.get("columns"), metadata.get("dictionary"))


class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Atomic Parquet files on a local disk or any fsspec store (s3://, gs://, abfs://)."""

    base_path: str = ""  # empty: SIS_PIPELINES_DATA_DIR, read when a run starts

    def create_io_manager(self, context: dg.InitResourceContext) -> ParquetIO:
        return ParquetIO(base_path=UPath(self.base_path or data_dir()))
