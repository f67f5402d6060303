"""The real files the tests read. Those whose licence allows it are vendored here (see
realdata/README.md). The GPL-3.0 Moodle bundles are not: they are read from ../shared beside
the checkout when it is there, else from realdata/moodle-enrol_oneroster-csv once
`make realdata` has fetched them (each pinned by its SHA-256), else their tests are skipped
and say so.

    python -m sis_pipelines_tests.realdata      # what `make realdata` runs
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

VENDORED = Path(__file__).parent / "realdata"
EDFI = VENDORED / "edfi-lms-toolkit-oneroster-v1p1"
EDULINQ = VENDORED / "edulinq-canvas-http"

# catalyst/moodle-enrol_oneroster, tests/fixtures/csv_data/, GPL-3.0, copied unmodified.
MOODLE_SOURCE = (
    "https://raw.githubusercontent.com/catalyst/moodle-enrol_oneroster/"
    "41c0cae9d91b06363b39d6902e478722a559810f/tests/fixtures/csv_data"
)
MOODLE_PINS = {
    "Test_full_data_set.zip": "3be903b4f6a1ee9dede8653132b4a34b265acdd51bd970e9bfa58dcec956ea4f",
    "Test_minimal_data_set.zip": "c5215c6e82ccd7b38452bdc18a63fc4df70e91fd48069aaa49735473d6cb1df0",
    "oneroster_test_data.zip": "35a37091ab099b92f9482541d0cac08b20d9796b9174709d2feeb1c94f34e04c",
    "v1p2_full_dataset.zip": "7e1326151ebcdb85734b3b7cb9acd2304197f21268b614201c7b9f2f385244dd",
}
MOODLE_MAX_BYTES = 1 << 20  # each is a few kilobytes
SHARED = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "moodle-enrol_oneroster-csv"
FETCHED = VENDORED / "moodle-enrol_oneroster-csv"  # (not in git: .gitignore)


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in MOODLE_PINS)


MOODLE = SHARED if _complete(SHARED) else FETCHED
MOODLE_BUNDLES = sorted(MOODLE.glob("*.zip")) if _complete(MOODLE) else []
needs_moodle = pytest.mark.skipif(
    not MOODLE_BUNDLES,
    reason="the GPL-3.0 Moodle bundles are not in this repository: `make realdata` fetches them",
)


def fetch_moodle(
    target: Path = FETCHED, source: str = MOODLE_SOURCE, pins: dict[str, str] = MOODLE_PINS
) -> list[Path]:
    """Each pinned bundle from ``source`` into ``target``, kept only when its SHA-256 is the
    pinned one (a file that differs is refused and nothing of it is written)."""
    import httpx

    target.mkdir(parents=True, exist_ok=True)
    written = []
    with httpx.Client(timeout=60, follow_redirects=False) as client:
        for name, digest in pins.items():
            path = target / name
            if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
                written.append(path)
                continue
            response = client.get(f"{source}/{name}")
            response.raise_for_status()
            body = response.content[: MOODLE_MAX_BYTES + 1]
            if len(body) > MOODLE_MAX_BYTES:
                raise ValueError(f"{name}: larger than {MOODLE_MAX_BYTES} bytes; not kept")
            if (got := hashlib.sha256(body).hexdigest()) != digest:
                raise ValueError(f"{name}: SHA-256 {got}, pinned {digest}; not kept")
            staged = path.with_name(f".{name}.part")
            staged.write_bytes(body)
            os.replace(staged, path)
            written.append(path)
    return written


if __name__ == "__main__":
    if _complete(SHARED):
        print(f"the Moodle bundles are in {SHARED}: nothing to fetch")
        sys.exit(0)
    try:
        paths = fetch_moodle()
    except Exception as exc:  # the network, the server or a pin: one line, not a traceback
        print(f"make realdata: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"{len(paths)} Moodle bundles in {FETCHED} (GPL-3.0; each checked against its SHA-256)")
