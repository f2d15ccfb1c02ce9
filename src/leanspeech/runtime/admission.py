"""Admission control: at most N jobs of each kind in flight (HTTP transcriptions, speech
syntheses), refused at once past the bound, never queued: a burst cannot build a queue
that holds memory and threads, or delays the live sessions that share the model."""

from __future__ import annotations

import threading
import time

from leanspeech.errors import LeanspeechError


class TooManyRequestsError(LeanspeechError):
    """Every place of a kind is taken; ``retry_after`` seconds is a fair wait."""

    kind = "too_many_requests"

    def __init__(self, what: str, limit: int, retry_after: float, setting: str):
        self.retry_after = retry_after
        super().__init__(f"{limit} {what} are already in flight, the most this server takes at once ({setting}); "
                         f"retry in {max(1, round(retry_after))} s")


class Ticket:
    """One admitted job; ``release()`` (idempotent) gives its place back."""

    def __init__(self, gate: Gate):
        self._gate = gate
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._released = False

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._gate._leave(time.monotonic() - self._started)


class Gate:
    """The places of one kind of job."""

    def __init__(self, what: str, limit: int, setting: str):
        self.what = what
        self.limit = limit
        self.setting = setting
        self.in_flight = 0
        self.refused = 0
        self._typical_s = 2.0  # running estimate of a job's time, for Retry-After
        self._lock = threading.Lock()

    def enter(self) -> Ticket:
        with self._lock:
            if self.in_flight >= self.limit:
                self.refused += 1
                raise TooManyRequestsError(self.what, self.limit, self._typical_s, self.setting)
            self.in_flight += 1
        return Ticket(self)

    def _leave(self, seconds: float) -> None:
        with self._lock:
            self.in_flight -= 1
            self._typical_s = 0.8 * self._typical_s + 0.2 * seconds
