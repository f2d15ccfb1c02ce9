"""The live slots: at most ``max_clients`` live sessions at once, whatever protocol they
speak, each for at most ``max_connection_time`` seconds."""

from __future__ import annotations

import itertools
import threading
import time


class LiveSlots:
    def __init__(self, max_clients: int, max_connection_time: float):
        self.max_clients = max_clients
        self.max_connection_time = max_connection_time
        self._started: dict[int, tuple[float, str]] = {}
        self._ids = itertools.count(1)
        self.totals: dict[str, int] = {}  # sessions opened per protocol, ever
        self._lock = threading.Lock()

    def enter(self, protocol: str) -> int | None:
        """A ticket for a new session, or None when every slot is taken."""
        with self._lock:
            if len(self._started) >= self.max_clients:
                return None
            ticket = next(self._ids)
            self._started[ticket] = (time.monotonic(), protocol)
            self.totals[protocol] = self.totals.get(protocol, 0) + 1
            return ticket

    def leave(self, ticket: int | None) -> None:
        with self._lock:
            if ticket is not None:
                self._started.pop(ticket, None)

    @property
    def active(self) -> int:
        return len(self._started)

    def by_protocol(self) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for _, protocol in self._started.values():
                out[protocol] = out.get(protocol, 0) + 1
            return out

    def wait_minutes(self) -> float:
        """When the first slot frees at the latest: the oldest session's time left."""
        now = time.monotonic()
        with self._lock:
            left = min((self.max_connection_time - (now - t) for t, _ in self._started.values()), default=0.0)
        return round(max(0.0, left) / 60.0, 2)
