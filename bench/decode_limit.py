"""The decoding limit, side by side: the very same enrollments page bytes decoded by our
columnar decoder (decode and normalise, every guarantee kept) and by the fastest plain paths
available here: `orjson` + `pa.Table.from_pylist`, and `pyarrow.json` on the records as NDJSON
(the conversion to NDJSON is not timed). Records per CPU second each, and ours as a share of
the best plain one."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import orjson
import pyarrow as pa
import pyarrow.json as pa_json

from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.oneroster.columnar import decode_page
from sis_pipelines.oneroster.source import open_rest

ENVELOPE = "enrollments"


def sample_pages(
    tenant_id: str, tenant: object, env: dict[str, str], page: int, pages: int
) -> list[bytes]:
    """The first ``pages`` pages of enrollments as the SIS sends them (bytes, not decoded)."""
    kept: list[bytes] = []

    def keep(content: bytes) -> pa.Table:
        kept.append(content)
        return pa.table({})  # taken as decoded: the client decodes nothing itself

    with open_rest(tenant_id, tenant, env) as client:  # type: ignore[arg-type]
        for n in range(pages):
            client.request_json(
                "GET", "/enrollments", {"limit": page, "offset": n * page}, columnar=keep
            )
            if len(kept) < n + 1:
                break
    return kept


def _rate(pages: list[bytes], decode: Callable[[bytes], int]) -> float:
    """Records per CPU second, best of three passes over the pages."""
    best = float("inf")
    records = 0
    for _ in range(3):
        cpu = time.process_time()
        records = sum(decode(p) for p in pages)
        best = min(best, time.process_time() - cpu)
    return records / best if best else 0.0


def decode_limit(pages: list[bytes]) -> dict[str, float]:
    collection = COLLECTIONS["enrollments"]
    ndjson = [b"\n".join(orjson.dumps(r) for r in orjson.loads(p)[ENVELOPE]) + b"\n" for p in pages]

    def ours(content: bytes) -> int:
        table = decode_page(collection, content)
        return 0 if table is None else table.num_rows

    def plain_orjson(content: bytes) -> int:
        return pa.Table.from_pylist(orjson.loads(content)[ENVELOPE]).num_rows

    def plain_arrow_json(content: bytes) -> int:
        return pa_json.read_json(io.BytesIO(content)).num_rows

    rates = {
        "ours_records_per_cpu_s": _rate(pages, ours),
        "orjson_from_pylist_records_per_cpu_s": _rate(pages, plain_orjson),
        "pyarrow_json_ndjson_records_per_cpu_s": _rate(ndjson, plain_arrow_json),
    }
    best = max(
        rates["orjson_from_pylist_records_per_cpu_s"],
        rates["pyarrow_json_ndjson_records_per_cpu_s"],
    )
    return {
        **{k: round(v) for k, v in rates.items()},
        "ours_share_of_best_plain": round(rates["ours_records_per_cpu_s"] / best, 2)
        if best
        else 0.0,
        "records": sum(len(orjson.loads(p)[ENVELOPE]) for p in pages),
    }
