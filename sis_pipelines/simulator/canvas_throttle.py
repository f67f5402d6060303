"""Canvas's request throttling, as its `request_throttle.rb` does it: a leaky bucket per access
token. A request pays an up-front cost on arrival (so many in flight at once fill the bucket),
credited back when it ends, when it pays its own cost; the bucket drains at ``outflow`` units a
second; a request that would take the bucket over the high-water mark is refused with
``403 Forbidden (Rate Limit Exceeded)``. A sequential client is never throttled; one that keeps
fourteen or more requests in flight is."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class LeakyBucket:
    hwm: float = 700.0  # hosted Canvas's high-water mark
    outflow: float = 10.0  # units drained a second
    up_front: float = 50.0  # paid on arrival, credited back at the end
    cost: float = 0.05  # what a request costs once done (Canvas: its CPU and DB seconds)
    level: float = 0.0
    _at: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _leak(self) -> None:
        now = time.monotonic()
        self.level = max(0.0, self.level - (now - self._at) * self.outflow)
        self._at = now

    def admit(self) -> bool:
        """Whether a request may start now; it then holds its up-front cost."""
        with self._lock:
            self._leak()
            if self.level + self.up_front > self.hwm:
                return False
            self.level += self.up_front
            return True

    def settle(self) -> float:
        """A request ends: its up-front cost back, its own cost paid; the room left."""
        with self._lock:
            self._leak()
            self.level = max(0.0, self.level - self.up_front + self.cost)
            return self.hwm - self.level

    def remaining(self) -> float:
        with self._lock:
            self._leak()
            return self.hwm - self.level
