"""Canvas provisioning assets: mapping, guarded delta and package, upload and tracking."""

from .assets import (
    DELTA,
    GUARD_CHECK,
    MAPPING,
    SIS_IMPORT,
    canvas_assets,
    canvas_delta,
    canvas_mapping,
    canvas_sis_import,
)

__all__ = [
    "DELTA",
    "GUARD_CHECK",
    "MAPPING",
    "SIS_IMPORT",
    "canvas_assets",
    "canvas_delta",
    "canvas_mapping",
    "canvas_sis_import",
]
