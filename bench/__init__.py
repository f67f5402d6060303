"""The benchmark: the largest district's night, stage by stage, beside DuckDB and pyarrow."""
