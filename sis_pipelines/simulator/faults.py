"""Scripted failures of a simulated provider: per path, after some requests, a few times."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass
class Fault:
    """A scripted failure: for requests whose path contains ``path``, after ``skip`` of them
    passed, the next ``times`` get this answer. ``kind``: status | drop | truncate | delay |
    echo (``status`` with a body repeating the request's headers, Authorization included, as
    careless servers do) | trickle (a 200 whose body comes a byte every ``delay_s``)."""

    path: str = ""
    status: int = 500
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] | None = None
    times: int = 1
    skip: int = 0
    kind: str = "status"
    delay_s: float = 0.0
    seen: int = 0


class FaultScript:
    """The faults a simulator plays, in the order they were added; safe across threads."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, **kwargs: Any) -> Fault:
        fault = Fault(**kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def add_all(self, faults: list[dict[str, Any]]) -> None:
        """Faults as the tenants file writes them (``oneroster.simulator_faults``)."""
        for fault in faults:
            body = fault.get("body")
            self.add(**{**fault, **({"body": body.encode()} if isinstance(body, str) else {})})

    def take(self, path: str) -> Fault | None:
        """The fault this request meets, if any (and counts it)."""
        with self._lock:
            for fault in self.faults:
                if fault.path in path and fault.times > 0:
                    fault.seen += 1
                    if fault.seen > fault.skip:
                        fault.times -= 1
                        return fault
        return None
