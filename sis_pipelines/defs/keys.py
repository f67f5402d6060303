"""Every asset key of the pipeline, declared once."""

import dagster as dg

from ..oneroster.collections import COLLECTIONS


def oneroster(name: str) -> dg.AssetKey:
    return dg.AssetKey(["oneroster", name])


ONEROSTER = [oneroster(name) for name in COLLECTIONS]
SESSIONS = oneroster("academic_sessions")
# A tenant's night has arrived when its whole roster is stored: enrollments come last.
ENROLLMENTS = oneroster("enrollments")

DROP = dg.AssetKey(["canvas_csv", "drop"])
MAPPING = dg.AssetKey(["canvas", "mapping"])
DELTA = dg.AssetKey(["canvas", "delta"])
SIS_IMPORT = dg.AssetKey(["canvas", "sis_import"])
CANVAS = [MAPPING, DELTA, SIS_IMPORT]

GRADEBOOK = dg.AssetKey(["gpb", "canvas_gradebook"])
PAYLOADS = dg.AssetKey(["gpb", "payloads"])
PUSH = dg.AssetKey(["gpb", "push"])

TENANT_PAGES = "tenants"


def tenant_page(tenant_id: str) -> dg.AssetKey:
    """The tenant's own page (``defs/tenants``): its trends and its freshness."""
    return dg.AssetKey([TENANT_PAGES, tenant_id])
