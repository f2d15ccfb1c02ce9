"""The live slots: at most ``max_clients`` live sessions at once, whatever protocol they
speak, each for at most ``max_connection_time`` seconds.

A session that has sent no audio for ``evict_idle_s`` keeps its slot only while nobody else
needs it: when every slot is taken, a new session takes the slot of the one idle longest,
which is told so and closed (its ``evict`` callback). Idle connections cannot lock the
live clients out, and a session that streams (live audio, silence included) is never
evicted."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Slot:
    started: float
    protocol: str
    evict: Callable[[], object] | None
    active: float = field(default_factory=time.monotonic)


class LiveSlots:
    def __init__(self, max_clients: int, max_connection_time: float, evict_idle_s: float = 0.0):
        self.max_clients = max_clients
        self.max_connection_time = max_connection_time
        self.evict_idle_s = evict_idle_s
        self._slots: dict[int, _Slot] = {}
        self._ids = itertools.count(1)
        self.totals: dict[str, int] = {}  # sessions opened per protocol, ever
        self.evicted = 0
        self._lock = threading.Lock()

    def enter(self, protocol: str, evict: Callable[[], object] | None = None) -> int | None:
        """A ticket for a new session, or None when every slot is taken by sessions that are
        not idle. ``evict()`` is called (once, on the caller's thread) if this session is
        later idle while another needs its slot; it must end the session."""
        victim: _Slot | None = None
        with self._lock:
            if len(self._slots) >= self.max_clients:
                victim_id = self._idlest()
                if victim_id is None:
                    return None
                victim = self._slots.pop(victim_id)
                self.evicted += 1
            ticket = next(self._ids)
            now = time.monotonic()
            self._slots[ticket] = _Slot(now, protocol, evict, now)
            self.totals[protocol] = self.totals.get(protocol, 0) + 1
        if victim is not None and victim.evict is not None:
            victim.evict()
        return ticket

    def _idlest(self) -> int | None:
        if self.evict_idle_s <= 0:
            return None
        now = time.monotonic()
        idle = [(slot.active, t) for t, slot in self._slots.items()
                if slot.evict is not None and now - slot.active >= self.evict_idle_s]
        return min(idle)[1] if idle else None

    def evicted_message(self) -> str:
        """What an evicted session is told."""
        return (f"this session sent no audio for {self.evict_idle_s:g} s while another client needed its slot; "
                "closing it (LEANSPEECH_LIVE__EVICT_IDLE_S)")

    def pin(self, ticket: int | None) -> None:
        """The session's audio has ended and it waits for its last results: not idle, never
        evicted."""
        slot = self._slots.get(ticket) if ticket is not None else None
        if slot is not None:
            slot.evict = None

    def touch(self, ticket: int | None) -> None:
        """The session sent audio now."""
        slot = self._slots.get(ticket) if ticket is not None else None
        if slot is not None:
            slot.active = time.monotonic()

    def leave(self, ticket: int | None) -> None:
        with self._lock:
            if ticket is not None:
                self._slots.pop(ticket, None)

    @property
    def active(self) -> int:
        return len(self._slots)

    def by_protocol(self) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for slot in self._slots.values():
                out[slot.protocol] = out.get(slot.protocol, 0) + 1
            return out

    def wait_minutes(self) -> float:
        """When the first slot frees at the latest: the oldest session's time left."""
        now = time.monotonic()
        with self._lock:
            left = min((self.max_connection_time - (now - s.started) for s in self._slots.values()), default=0.0)
        return round(max(0.0, left) / 60.0, 2)
