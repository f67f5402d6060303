"""The real files the tests read: those whose licence allows it are vendored here (see
realdata/README.md); the GPL-3.0 Moodle bundles are read from ../shared beside the checkout,
when it is there."""

from __future__ import annotations

from pathlib import Path

import pytest

VENDORED = Path(__file__).parent / "realdata"
EDFI = VENDORED / "edfi-lms-toolkit-oneroster-v1p1"
EDULINQ = VENDORED / "edulinq-canvas-http"
MOODLE = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "moodle-enrol_oneroster-csv"
MOODLE_BUNDLES = sorted(MOODLE.glob("*.zip"))
needs_moodle = pytest.mark.skipif(
    not MOODLE_BUNDLES,
    reason=f"the GPL-3.0 Moodle bundles are not in this repository; put them in {MOODLE}",
)
