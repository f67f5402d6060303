"""What teachers do in the simulated Canvas through its API (grade, clear, excuse, mark
missing or late; create, change, unpublish or delete an assignment; weight assignment groups):
a log of edits, one JSON object per line, shared by every process that serves the tenant's
Canvas (the pipeline's runs, the daemon's sensors, a standalone ``simulator canvas``).

Each edit carries the moment it was made (``at``); a gradebook as at a moment applies the
edits made by then, so a night's gradebook stays the same whenever it is asked for.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TeacherEdits:
    def __init__(self, path: Path | None = None):
        self.path = path
        self._edits: list[dict[str, Any]] = []
        self._size = -1
        self._lock = threading.Lock()

    def record(self, edit: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._refresh()
            self._edits.append(edit)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("ab") as fh:
                    fh.write(orjson.dumps(edit) + b"\n")
                self._size = self.path.stat().st_size
            return edit

    def for_course(self, course_id: str) -> list[dict[str, Any]]:
        with self._lock:
            self._refresh()
            return [e for e in self._edits if e["course"] == course_id]

    def version(self) -> int:
        with self._lock:
            self._refresh()
            return len(self._edits)

    def _refresh(self) -> None:
        """Another process may have appended: read the log again when its size changed."""
        if self.path is None or not self.path.exists():
            return
        size = self.path.stat().st_size
        if size != self._size:
            lines = self.path.read_bytes().splitlines()
            self._edits = [orjson.loads(line) for line in lines if line.strip()]
            self._size = size
